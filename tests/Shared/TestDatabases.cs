using Lethe.Storage;
using Npgsql;

namespace Lethe.Tests.Shared;

/// <summary>Fresh, isolated databases for tests: a new SQLite file, or a new schema in the test PostgreSQL.</summary>
public static class TestDatabases
{
    /// <summary>The PostgreSQL the tests use: <c>LETHE_TEST_POSTGRES</c> (an Npgsql connection string), else the role test.sh creates.</summary>
    public static string PostgresConnectionString =>
        Environment.GetEnvironmentVariable("LETHE_TEST_POSTGRES")
        ?? "Host=127.0.0.1;Port=5432;Username=lethe_test;Password=lethe_test;Database=lethe_test;Timeout=5";

    private static readonly Lazy<string?> PostgresProblem = new(() =>
    {
        // Where PostgreSQL is required it may still be finishing a recovery ("the database system is starting
        // up"): keep trying for a while before failing every PostgreSQL test at once.
        var deadline = DateTime.UtcNow + (Environment.GetEnvironmentVariable("LETHE_REQUIRE_POSTGRES") == "1"
            ? TimeSpan.FromMinutes(2) : TimeSpan.Zero);
        while (true)
        {
            try
            {
                using var conn = new NpgsqlConnection(PostgresConnectionString);
                conn.Open();
                return null;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    return e.Message;
                }

                Thread.Sleep(1000);
            }
        }
    });

    /// <summary>Skips the current test, with the reason, when no PostgreSQL is reachable (CI always has one: .ci/run fails instead).</summary>
    public static void RequirePostgres()
    {
        if (PostgresProblem.Value is { } problem)
        {
            if (Environment.GetEnvironmentVariable("LETHE_REQUIRE_POSTGRES") == "1")
            {
                throw new InvalidOperationException("PostgreSQL is required (LETHE_REQUIRE_POSTGRES=1) but not reachable: " + problem);
            }

            Assert.Skip("PostgreSQL not reachable (" + problem + "); run ./test.sh to set it up, or set LETHE_TEST_POSTGRES");
        }
    }

    /// <summary>Options for a new empty PostgreSQL schema, created now.</summary>
    public static DatabaseOptions NewPostgres()
    {
        RequirePostgres();
        var schema = "t_" + Guid.NewGuid().ToString("N")[..16];
        using (var conn = new NpgsqlConnection(PostgresConnectionString))
        {
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = $"CREATE SCHEMA {schema}";
            cmd.ExecuteNonQuery();
        }

        var builder = new NpgsqlConnectionStringBuilder(PostgresConnectionString) { SearchPath = schema };
        return new DatabaseOptions { Engine = DatabaseEngine.Postgres, PostgresConnectionString = builder.ToString(), MaxPoolSize = 10 };
    }

    /// <summary>A Synapse-style <c>database:</c> block for a new empty PostgreSQL schema, created now.</summary>
    public static string NewPostgresYaml()
    {
        var options = NewPostgres();
        var b = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString);
        return $"""
            database:
              name: psycopg2
              args:
                user: "{b.Username}"
                password: "{b.Password}"
                dbname: "{b.Database}"
                host: "{b.Host}"
                port: {b.Port}
                options: "-c search_path={b.SearchPath}"
                cp_min: 1
                cp_max: 5

            """;
    }

    /// <summary>Options for a new SQLite file in a fresh temporary folder.</summary>
    public static DatabaseOptions NewSqlite()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lethe-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return new DatabaseOptions { Engine = DatabaseEngine.Sqlite, SqlitePath = Path.Combine(dir, "homeserver.db") };
    }

    /// <summary>Options for a new database of the given engine.</summary>
    public static DatabaseOptions New(DatabaseEngine engine) => engine == DatabaseEngine.Postgres ? NewPostgres() : NewSqlite();
}
