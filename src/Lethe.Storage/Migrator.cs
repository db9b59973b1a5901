using System.Data.Common;
using System.Globalization;
using System.Reflection;
using Dapper;

namespace Lethe.Storage;

/// <summary>Applies the numbered, forward-only migration scripts embedded under <c>Migrations/&lt;Engine&gt;/NNNN_name.sql</c>, each in its own transaction.</summary>
internal sealed class Migrator(Database db)
{
    /// <summary>A migration script: its number, name and SQL.</summary>
    internal sealed record Script(int Version, string Name, string Sql);

    /// <summary>The scripts for the database's engine, in order.</summary>
    internal IReadOnlyList<Script> Scripts()
    {
        var asm = typeof(Migrator).Assembly;
        var prefix = $"{asm.GetName().Name}.Migrations.{db.MigrationFolder}.";
        var scripts = new List<Script>();
        foreach (var resource in asm.GetManifestResourceNames())
        {
            if (!resource.StartsWith(prefix, StringComparison.Ordinal) || !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var file = resource[prefix.Length..^4];
            // Resource names of files starting with a digit get a leading underscore from MSBuild.
            var numberText = file.TrimStart('_');
            var underscore = numberText.IndexOf('_', StringComparison.Ordinal);
            var version = int.Parse(numberText[..underscore], CultureInfo.InvariantCulture);
            using var stream = asm.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add(new Script(version, numberText[(underscore + 1)..], reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));

        // Numbers may have gaps: branches developed side by side each reserve a number, and a build that has 0010 but
        // not yet 0009 must still start. Each script is applied (or skipped) by its own number, so when the missing
        // one arrives later it is applied then. Two scripts with one number would be ambiguous, though.
        for (var i = 0; i < scripts.Count; i++)
        {
            if (scripts[i].Version < 1 || (i > 0 && scripts[i].Version == scripts[i - 1].Version))
            {
                throw new InvalidOperationException($"Migration scripts need distinct positive numbers; found {scripts[i].Version} twice or out of range");
            }
        }

        return scripts;
    }

    public async Task ApplyAsync(CancellationToken ct)
    {
        var scripts = Scripts();
        await db.WriteAsync(async tx =>
        {
            await tx.Connection!.ExecuteAsync(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)",
                transaction: tx);
        }, ct);

        foreach (var script in scripts)
        {
            await db.WriteAsync(async tx =>
            {
                await db.LockForMigrationAsync(tx, ct);
                var applied = await tx.Connection!.ExecuteScalarAsync<long>(
                    "SELECT COUNT(*) FROM schema_migrations WHERE version = @Version", new { script.Version }, tx);
                if (applied > 0)
                {
                    return;
                }

                await tx.Connection!.ExecuteAsync(script.Sql, transaction: tx);
                await tx.Connection!.ExecuteAsync(
                    "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (@Version, @Name, @Ts)",
                    new { script.Version, script.Name, Ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, tx);
            }, ct);
        }

        var newest = await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"), ct);
        var known = scripts.Count == 0 ? 0 : scripts[^1].Version;
        if (newest > known)
        {
            throw new InvalidOperationException(
                $"The database schema is at version {newest}, newer than this Lethe build knows ({known}). Upgrade Lethe; downgrades are not supported.");
        }
    }

    /// <summary>The schema version the database is at.</summary>
    internal static Task<long> CurrentVersionAsync(Database db) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
}
