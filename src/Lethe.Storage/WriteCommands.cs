using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace Lethe.Storage;

/// <summary>
/// Runs the statements of the write path (every event sent) as plain ADO.NET commands that can be reused, rather than
/// through Dapper, which makes a new command per call.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite compiles a command's SQL on first execution and keeps the compiled statement for as long as
/// the command and its text live, so executing the same <see cref="SqliteCommand"/> again only rebinds parameters.
/// SQLite writes all go through one connection that lives as long as the process (<see cref="SqliteDatabase"/>), so
/// its commands are kept per connection and each hot statement is compiled once. PostgreSQL connections are pooled and
/// opened per transaction; they get a fresh command per call, as with Dapper. Only connections used by write
/// transactions come here, so the kept commands are the writer's and a fixed set of statements.
/// </remarks>
internal static class WriteCommands
{
    private static readonly ConditionalWeakTable<DbConnection, Dictionary<string, DbCommand>> Kept = new();

    /// <summary>Runs a statement in the transaction; returns the number of rows changed.</summary>
    public static async Task<int> ExecuteAsync(DbTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        var (command, owned) = Prepare(tx, sql, args);
        try
        {
            return await command.ExecuteNonQueryAsync();
        }
        finally
        {
            if (owned)
            {
                await command.DisposeAsync();
            }
        }
    }

    /// <summary>Runs a statement in the transaction; returns the first column of the first row, or null for none or SQL NULL.</summary>
    public static async Task<object?> ScalarAsync(DbTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        var (command, owned) = Prepare(tx, sql, args);
        try
        {
            var value = await command.ExecuteScalarAsync();
            return value is DBNull ? null : value;
        }
        finally
        {
            if (owned)
            {
                await command.DisposeAsync();
            }
        }
    }

    private static (DbCommand Command, bool Owned) Prepare(DbTransaction tx, string sql, (string Name, object? Value)[] args)
    {
        var connection = tx.Connection ?? throw new InvalidOperationException("The transaction has completed");
        if (connection is not SqliteConnection)
        {
            var fresh = connection.CreateCommand();
            fresh.CommandText = sql;
            fresh.Transaction = tx;
            foreach (var (name, value) in args)
            {
                var p = fresh.CreateParameter();
                p.ParameterName = name;
                p.Value = value ?? DBNull.Value;
                fresh.Parameters.Add(p);
            }

            return (fresh, true);
        }

        // The writer is used by one transaction at a time (SqliteDatabase serialises writes), so its commands are too.
        var commands = Kept.GetValue(connection, static _ => new Dictionary<string, DbCommand>(StringComparer.Ordinal));
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, _) in args)
            {
                var p = command.CreateParameter();
                // With its prefix, binding finds the parameter in one call; a bare name costs a failed lookup and then
                // one per prefix (":", "@", "$"), each marshalling the name to UTF-8: 10 % of the writer's time in a
                // 32-connection send profile (docs/benchmarks.md).
                p.ParameterName = "@" + name;
                command.Parameters.Add(p);
            }

            commands[sql] = command;
        }

        command.Transaction = tx;
        var parameters = command.Parameters;
        if (parameters.Count != args.Length)
        {
            throw new InvalidOperationException("A kept statement must always be run with the same parameters: " + sql);
        }

        for (var i = 0; i < args.Length; i++)
        {
            // Same statement text, same parameters in the same order: callers pass them positionally.
            parameters[i].Value = args[i].Value ?? DBNull.Value;
        }

        return (command, false);
    }
}
