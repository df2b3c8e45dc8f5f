using AspireAi.TestSupport;

[assembly: AssemblyFixture(typeof(PostgresServer))]
