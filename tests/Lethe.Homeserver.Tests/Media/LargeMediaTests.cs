using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>Tests that measure the process's allocations run alone, so other tests' allocations do not count.</summary>
[CollectionDefinition(nameof(MemoryMeasured), DisableParallelization = true)]
public sealed class MemoryMeasured;

/// <summary>A 100 MB upload and download: byte-exact, and streamed (the whole file is never held in memory).</summary>
[Collection(nameof(MemoryMeasured))]
public abstract class LargeMediaTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;
    private MatrixClient _alice = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "max_upload_size: 200M\n");
        _alice = await _server.RegisterAsync("alice");
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A100MegabyteFileRoundTripsByteExactWithoutBufferingTheWholeFile()
    {
        const long size = 100L * 1024 * 1024;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        using var content = new StreamContent(new PatternStream(size), 64 * 1024);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.ContentLength = size;
        using var upload = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload?filename=big.bin") { Content = content };
        upload.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _alice.AccessToken);
        using var uploaded = await _server.Client.SendAsync(upload);
        var body = await uploaded.Content.ReadAsStringAsync();
        Assert.True(uploaded.StatusCode == HttpStatusCode.OK, body);
        var uri = JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
        Assert.Equal(size, new FileInfo(_server.Host.Services.Media.Files.ContentPath(uri[(uri.LastIndexOf('/') + 1)..])).Length);

        using var download = new HttpRequestMessage(HttpMethod.Get, "/_matrix/client/v1/media/download/" + uri["mxc://".Length..]);
        download.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _alice.AccessToken);
        using var response = await _server.Client.SendAsync(download, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(size, response.Content.Headers.ContentLength);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var expected = new PatternStream(size);
        var got = new byte[256 * 1024];
        var want = new byte[got.Length];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(got)) > 0)
        {
            expected.ReadExactly(want, 0, n);
            Assert.True(got.AsSpan(0, n).SequenceEqual(want.AsSpan(0, n)), $"bytes differ near offset {total}");
            total += n;
        }

        Assert.Equal(size, total);

        // Client and server share this process: 200 MB moved must not mean 100 MB held by either side.
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        Assert.True(allocated < 40L * 1024 * 1024, $"{allocated / 1024 / 1024} MB allocated to move 2 × 100 MB");
    }
}

public sealed class SqliteLargeMediaTests() : LargeMediaTests(DatabaseEngine.Sqlite);

public sealed class PostgresLargeMediaTests() : LargeMediaTests(DatabaseEngine.Postgres);
