using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Cli;

/// <summary>What the real server process keeps in memory.</summary>
public sealed class FootprintTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AServerUsedThroughTheClientApiLoadsNeitherOpenSslNorAnHttpClientNorReflectionDataAccess(bool native)
    {
        // Signing, password hashing, hashes and random numbers all come from libsodium; OpenSSL (libcrypto and libssl,
        // 4 MiB of resident memory) is for TLS and HMACs. A first start generates the signing key; then a user
        // registers, logs in, creates a room, sends and syncs. With no pusher and previews off, nothing makes an outbound
        // request, so System.Net.Http (1.2 MiB) stays unloaded too. Data access is generated at build time, so Dapper's
        // reflection path, which maps System.Private.Xml and System.Linq.Expressions, is never taken: the session below
        // binds blobs (account data, a filter) and lists (the sync's per-room reads). The native build maps no
        // assemblies, so the assembly checks are for the JIT build; a query left to Dapper's reflection path would fail
        // outright in the native one (it cannot emit code), so the JIT build is what shows one was left.
        if (native && !LetheProcess.NativeBuild)
        {
            Assert.Skip("no C compiler here, so ./lethe runs the JIT build only");
        }

        var dir = TestHomeserver.NewTempDir();
        var config = await LetheProcess.WriteServeConfigAsync(dir, "footprint.test");
        await using var lethe = LetheProcess.StartBuild(native, "Warning", dir, "serve", "--config", config);
        using var http = new HttpClient { BaseAddress = await lethe.WaitForUrlAsync(TimeSpan.FromSeconds(90)) };
        var alice = await new MatrixClient(http).RegisterAsync("alice");
        var again = new MatrixClient(http);
        await again.LoginAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        await again.SendTextAsync(roomId, "hello");
        (await alice.PutAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(alice.UserId)}/account_data/org.example.note", new System.Text.Json.Nodes.JsonObject { ["n"] = 1 })).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(alice.UserId)}/filter", new System.Text.Json.Nodes.JsonObject { ["room"] = new System.Text.Json.Nodes.JsonObject() })).Ok();
        Assert.Equal(["hello"], (await alice.SyncAsync()).Timeline(roomId).Bodies());

        var maps = await File.ReadAllTextAsync($"/proc/{lethe.Pid}/maps");
        Assert.DoesNotContain("libcrypto", maps, StringComparison.Ordinal);
        Assert.Equal(native, !maps.Contains("System.Private.CoreLib.dll", StringComparison.Ordinal));
        Assert.DoesNotContain("System.Net.Http.dll", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Private.Xml.dll", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Linq.Expressions.dll", maps, StringComparison.Ordinal);
    }
}
