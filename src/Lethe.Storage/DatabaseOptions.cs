namespace Lethe.Storage;

/// <summary>Which database engine holds the server's data.</summary>
public enum DatabaseEngine
{
    /// <summary>An embedded SQLite file: the zero-setup default.</summary>
    Sqlite,

    /// <summary>A PostgreSQL server.</summary>
    Postgres,
}

/// <summary>How to reach the database; built from the <c>database</c> config block.</summary>
public sealed record DatabaseOptions
{
    /// <summary>The engine.</summary>
    public DatabaseEngine Engine { get; init; } = DatabaseEngine.Sqlite;

    /// <summary>SQLite: path of the database file.</summary>
    public string SqlitePath { get; init; } = "homeserver.db";

    /// <summary>PostgreSQL: an Npgsql connection string.</summary>
    public string PostgresConnectionString { get; init; } = "";

    /// <summary>Smallest number of pooled connections kept open (PostgreSQL).</summary>
    public int MinPoolSize { get; init; } = 1;

    /// <summary>Largest number of pooled connections (PostgreSQL).</summary>
    public int MaxPoolSize { get; init; } = 20;
}
