/*
 * Test harness for uvctl's meadowproxy backend: a real meadow-endpoints REST server.
 *
 * It opens an existing SQLite file (the UV tables are created beforehand by
 * `uvctl schema ensure`), builds one meadow DAL per UV table from the live table
 * layout (the way a databeacon types introspected columns), and mounts the
 * meadow-endpoints routes under `/1.0/<routeHash>/<Table>` like a databeacon's
 * dynamic endpoints (`/1.0/<Table>` when the route hash is empty). It listens on
 * 127.0.0.1 only and prints `LISTENING <port>` once it answers.
 *
 * Usage: node server.js --db FILE --port N [--route-hash HASH]
 */
'use strict';

const libFable = require('fable');
const libOrator = require('orator');
const libRestifyServer = require('orator-serviceserver-restify');
const libSQLiteConnection = require('meadow-connection-sqlite');
const libMeadow = require('meadow');
const libMeadowEndpoints = require('meadow-endpoints');

function parseArguments(pArgv)
{
	const tmpResult = { db: null, port: 0, routeHash: '' };
	for (let i = 0; i < pArgv.length; i++)
	{
		const tmpValue = pArgv[i + 1];
		switch (pArgv[i])
		{
			case '--db': tmpResult.db = tmpValue; i++; break;
			case '--port': tmpResult.port = parseInt(tmpValue, 10); i++; break;
			case '--route-hash': tmpResult.routeHash = tmpValue || ''; i++; break;
			default: throw new Error(`unknown argument ${pArgv[i]}`);
		}
	}
	if (!tmpResult.db)
	{
		throw new Error('--db FILE is required');
	}
	return tmpResult;
}

// Column name and native type → meadow type, following the databeacon's introspection rules.
function meadowTypeOf(pColumn)
{
	if (pColumn.pk)
	{
		return 'AutoIdentity';
	}
	if (['CreateDate', 'UpdateDate', 'Deleted', 'DeleteDate'].includes(pColumn.name))
	{
		return pColumn.name;
	}
	const tmpNative = String(pColumn.type || '').toUpperCase();
	if (/BOOL|BIT/.test(tmpNative))
	{
		return 'Boolean';
	}
	if (/INT|DECIMAL|NUMERIC|FLOAT|DOUBLE|REAL|NUMBER/.test(tmpNative))
	{
		return 'Numeric';
	}
	return 'String';
}

function defaultValueOf(pType)
{
	switch (pType)
	{
		case 'AutoIdentity': case 'Numeric': case 'Boolean': case 'Deleted': return 0;
		case 'CreateDate': case 'UpdateDate': case 'DeleteDate': return null;
		default: return '';
	}
}

function jsonTypeOf(pType)
{
	switch (pType)
	{
		case 'AutoIdentity': case 'Numeric': return 'number';
		case 'Boolean': case 'Deleted': return 'boolean';
		default: return 'string';
	}
}

function packageForTable(pDatabase, pTable)
{
	const tmpColumns = pDatabase.prepare(`PRAGMA table_info("${pTable}")`).all();
	const tmpPackage = {
		Scope: pTable,
		DefaultIdentifier: (tmpColumns.find((pColumn) => pColumn.pk) || tmpColumns[0]).name,
		Domain: 'Default',
		Schema: [],
		DefaultObject: {},
		JsonSchema: { title: pTable, type: 'object', properties: {}, required: [] }
	};
	for (const tmpColumn of tmpColumns)
	{
		const tmpType = meadowTypeOf(tmpColumn);
		tmpPackage.Schema.push({ Column: tmpColumn.name, Type: tmpType, Size: 'Default' });
		tmpPackage.DefaultObject[tmpColumn.name] = defaultValueOf(tmpType);
		tmpPackage.JsonSchema.properties[tmpColumn.name] = { type: jsonTypeOf(tmpType) };
	}
	return tmpPackage;
}

function main()
{
	const tmpArguments = parseArguments(process.argv.slice(2));
	const tmpFable = new libFable({
		Product: 'uvctl-meadow-test-server',
		ProductVersion: '0.0.1',
		APIServerPort: tmpArguments.port,
		MeadowProvider: 'SQLite',
		MeadowEndpointsSessionDataSource: 'Header',
		SQLite: { SQLiteFilePath: tmpArguments.db },
		LogStreams: [{ streamtype: 'console', level: 'error' }]
	});

	tmpFable.serviceManager.addServiceType('MeadowSQLiteProvider', libSQLiteConnection);
	tmpFable.serviceManager.instantiateServiceProvider('MeadowSQLiteProvider');
	tmpFable.serviceManager.addServiceType('OratorServiceServer', libRestifyServer);
	tmpFable.serviceManager.instantiateServiceProvider('OratorServiceServer', {});
	tmpFable.serviceManager.addServiceType('Orator', libOrator);
	const tmpOrator = tmpFable.serviceManager.instantiateServiceProvider('Orator', {});

	tmpFable.MeadowSQLiteProvider.connectAsync((pConnectError, pDatabase) =>
	{
		if (pConnectError)
		{
			console.error(`cannot open ${tmpArguments.db}: ${pConnectError.message}`);
			process.exit(2);
		}
		tmpOrator.initialize((pInitializeError) =>
		{
			if (pInitializeError)
			{
				console.error(`orator failed to initialize: ${pInitializeError}`);
				process.exit(2);
			}
			const tmpServiceServer = tmpFable.OratorServiceServer;
			const tmpTables = pDatabase.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'UV%' ORDER BY name").all();
			if (tmpTables.length === 0)
			{
				console.error(`${tmpArguments.db} has no UV tables; run uvctl schema ensure on it first`);
				process.exit(2);
			}
			const tmpPrefix = tmpArguments.routeHash ? `/1.0/${tmpArguments.routeHash}` : '/1.0';
			for (const tmpRow of tmpTables)
			{
				const tmpDAL = libMeadow.new(tmpFable).loadFromPackageObject(packageForTable(pDatabase, tmpRow.name));
				const tmpEndpoints = libMeadowEndpoints.new(tmpDAL);
				tmpEndpoints.EndpointPrefix = `${tmpPrefix}/${tmpRow.name}`;
				tmpEndpoints.connectRoutes(tmpServiceServer);
			}
			tmpServiceServer.server.listen(tmpArguments.port, '127.0.0.1', () =>
			{
				tmpServiceServer.Active = true;
				process.stdout.write(`LISTENING ${tmpServiceServer.server.address().port}\n`);
			});
		});
	});

	const fStop = () => closeServer(tmpFable, () => process.exit(0));
	process.on('SIGTERM', fStop);
	process.on('SIGINT', fStop);
}

function closeServer(pFable, fDone)
{
	const tmpServer = pFable.OratorServiceServer && pFable.OratorServiceServer.server;
	if (!tmpServer)
	{
		return fDone();
	}
	tmpServer.close(() => fDone());
	// Keep-alive sockets would hold close() open; the process exits regardless.
	setTimeout(fDone, 500).unref();
}

main();
