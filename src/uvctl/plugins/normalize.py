"""Built-in fallback for ``uvctl_normalize``: raw results that already are envelopes."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def uvctl_normalize(action, raw):
    """Pass an envelope through; wrap anything else as a failure with a clear reason."""
    if isinstance(raw, dict) and "Success" in raw:
        return {"Available": True, **raw}
    return {
        "Available": True,
        "Success": False,
        "Reason": f"backend answered {action.name} with an unrecognised result ({type(raw).__name__})",
    }
