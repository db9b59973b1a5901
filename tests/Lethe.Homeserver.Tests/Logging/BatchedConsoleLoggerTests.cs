using System.Text;
using System.Text.RegularExpressions;
using Lethe.Homeserver.Logging;
using Lethe.Homeserver.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Tests.Logging;

public sealed partial class BatchedConsoleLoggerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void EveryLineIsWrittenInOrderInTheConsoleFormatByTheTimeTheProviderIsDisposed()
    {
        var output = new CapturingStream();
        var provider = new BatchedConsoleLoggerProvider(output, TimeSpan.FromMilliseconds(50));
        var logger = provider.CreateLogger("Lethe.Http");
        for (var i = 0; i < 5000; i++)
        {
            logger.LogInformation("PUT /send/{Txn} 200", i);
        }

        provider.Dispose();

        var lines = output.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5000, lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            var m = ConsoleLine().Match(lines[i]);
            Assert.True(m.Success, lines[i]);
            Assert.Equal("info", m.Groups["level"].Value);
            Assert.Equal("Lethe.Http", m.Groups["category"].Value);
            Assert.Equal($"PUT /send/{i} 200", m.Groups["message"].Value);
        }
    }

    [Fact]
    public async Task AWarningIsWrittenAtOnceTogetherWithTheLinesLoggedBeforeIt()
    {
        var output = new CapturingStream();
        // Informational lines would wait an hour: only the warning can bring them out.
        using var provider = new BatchedConsoleLoggerProvider(output, TimeSpan.FromHours(1));
        var logger = provider.CreateLogger("Lethe.Retention");
        logger.LogInformation("first");
        logger.LogInformation("second");
        logger.LogWarning("purge failed");

        await Poll.UntilAsync(() => Task.FromResult(output.Text.Contains("purge failed", StringComparison.Ordinal)), Timeout, "the warning is written");
        var text = output.Text;
        Assert.True(text.IndexOf("info: Lethe.Retention[0] first", StringComparison.Ordinal) < text.IndexOf("info: Lethe.Retention[0] second", StringComparison.Ordinal));
        Assert.Contains("warn: Lethe.Retention[0] purge failed\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ALineBreakInAMessageOrAnExceptionCannotStartALineOfItsOwn()
    {
        var output = new CapturingStream();
        var provider = new BatchedConsoleLoggerProvider(output, TimeSpan.FromMilliseconds(50));
        var logger = provider.CreateLogger("Lethe.Http");
        // A request path is the client's text: a decoded %0A must not forge a log line.
        logger.LogInformation("GET {Path} 404", "/x\n2026-12-07 00:00:00.000 info: Lethe.Http[0] GET /forged 200");
        logger.LogError(new InvalidOperationException("broken\nstate"), "Unhandled error in {Path}", "/y");
        provider.Dispose();

        var lines = output.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("GET /forged 200 404", lines[0], StringComparison.Ordinal);
        Assert.Contains("fail: Lethe.Http[0] Unhandled error in /y System.InvalidOperationException: broken state", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStuckOutputNeitherHoldsLoggingBackNorHidesThatLinesWereDropped()
    {
        var output = new CapturingStream { Blocked = true };
        var provider = new BatchedConsoleLoggerProvider(output, TimeSpan.Zero);
        var logger = provider.CreateLogger("Lethe.Http");
        logger.LogInformation("before the stall");
        await Poll.UntilAsync(() => Task.FromResult(output.WritesWaiting > 0), Timeout, "the writer is stuck in a write");

        // 3 MiB of lines while standard output takes nothing: logging must neither block nor grow without bound.
        var line = new string('x', 1000);
        await Task.Run(() =>
        {
            for (var i = 0; i < 3000; i++)
            {
                logger.LogInformation("{Line}", line);
            }
        }).WaitAsync(Timeout);

        output.Release();
        provider.Dispose();
        var text = output.Text;
        Assert.Contains("before the stall", text, StringComparison.Ordinal);
        var dropped = DroppedLine().Match(text);
        Assert.True(dropped.Success, "a line says how many lines were dropped");
        var written = text.Split('\n').Count(l => l.EndsWith(line, StringComparison.Ordinal));
        Assert.Equal(3000, written + int.Parse(dropped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(written, 1, 1100);
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?<level>[a-z]{4}): (?<category>[^\[]+)\[\d+\] (?<message>.*)$")]
    private static partial Regex ConsoleLine();

    [GeneratedRegex(@"warn: Lethe\.Logging\[0\] (\d+) log lines dropped: standard output did not keep up")]
    private static partial Regex DroppedLine();

    /// <summary>Standard output as the test sees it; <see cref="Blocked"/> makes writes wait like a pipe nobody reads.</summary>
    private sealed class CapturingStream : Stream
    {
        private readonly MemoryStream _bytes = new();
        private readonly ManualResetEventSlim _open = new(true);
        private int _waiting;

        public bool Blocked
        {
            init
            {
                if (value)
                {
                    _open.Reset();
                }
            }
        }

        public int WritesWaiting => Volatile.Read(ref _waiting);

        public string Text
        {
            get
            {
                lock (_bytes)
                {
                    return Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Release() => _open.Set();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Interlocked.Increment(ref _waiting);
            _open.Wait();
            Interlocked.Decrement(ref _waiting);
            lock (_bytes)
            {
                _bytes.Write(buffer);
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
