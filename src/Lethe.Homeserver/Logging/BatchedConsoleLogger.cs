using System.Text;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Logging;

/// <summary>
/// Writes log lines to standard output in the format of the simple console logger's single-line mode
/// (<c>2026-12-07 20:43:11.410 info: Lethe.Http[1330097018] PUT /… 200 0.6ms</c>, UTC), a batch at a time.
/// </summary>
/// <remarks>
/// The console logger wakes its writer thread for every line and writes every line with a system call of its own: with
/// a request line per request, that was a context switch and a <c>write</c> per request, which cost sequential sends
/// ~10 % of their rate on 2 cores (docs/benchmarks.md). Here a line only joins a buffer; the writer thread is woken
/// when the buffer stops being empty and writes what gathered over <see cref="BatchDelay"/> in one go. Warnings and
/// errors are written at once, together with everything before them. When standard output does not keep up (a paused
/// terminal, a stuck pipe), lines beyond <see cref="MaxPendingChars"/> are dropped and counted instead of holding
/// requests back; the count is written when output resumes.
/// </remarks>
public sealed class BatchedConsoleLoggerProvider : ILoggerProvider
{
    /// <summary>How long the writer lets lines gather before writing them.</summary>
    public static readonly TimeSpan DefaultBatchDelay = TimeSpan.FromMilliseconds(100);

    private const int MaxPendingChars = 1 << 20;

    private readonly Stream _output;
    private readonly Thread _writer;
    private readonly object _gate = new();
    private StringBuilder _pending = new();
    private StringBuilder _writing = new();
    private long _dropped;
    private bool _urgent;
    private bool _disposed;

    /// <summary>Logs to standard output.</summary>
    public BatchedConsoleLoggerProvider()
        : this(Console.OpenStandardOutput(), DefaultBatchDelay)
    {
    }

    /// <summary>Logs to <paramref name="output"/>, waiting <paramref name="batchDelay"/> for lines to gather before each write.</summary>
    public BatchedConsoleLoggerProvider(Stream output, TimeSpan batchDelay)
    {
        _output = output;
        BatchDelay = batchDelay;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "Lethe log writer" };
        _writer.Start();
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>How long lines below <see cref="LogLevel.Warning"/> may wait in the buffer.</summary>
    public TimeSpan BatchDelay { get; }

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>Writes what is buffered and stops the writer; lines logged afterwards are dropped.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Monitor.PulseAll(_gate);
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _writer.Join(TimeSpan.FromSeconds(5));
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private void Append(LogLevel level, string line)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_pending.Length + line.Length > MaxPendingChars)
            {
                _dropped++;
                return;
            }

            var wasEmpty = _pending.Length == 0;
            _pending.Append(line);
            if (level >= LogLevel.Warning)
            {
                _urgent = true;
                Monitor.PulseAll(_gate);
            }
            else if (wasEmpty)
            {
                // The writer waits untimed only while the buffer is empty; during its batch delay it needs no wake-up.
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void WriteLoop()
    {
        while (true)
        {
            long dropped;
            bool last;
            lock (_gate)
            {
                while (_pending.Length == 0 && _dropped == 0 && !_disposed)
                {
                    Monitor.Wait(_gate);
                }

                if (!_urgent && !_disposed)
                {
                    Monitor.Wait(_gate, BatchDelay);
                }

                (_pending, _writing) = (_writing, _pending);
                dropped = _dropped;
                _dropped = 0;
                _urgent = false;
                last = _disposed;
            }

            if (dropped > 0)
            {
                _writing.Append(Format(DateTimeOffset.UtcNow, LogLevel.Warning, "Lethe.Logging", 0, $"{dropped} log lines dropped: standard output did not keep up", null));
            }

            try
            {
                foreach (var chunk in _writing.GetChunks())
                {
                    WriteChars(chunk.Span);
                }

                _output.Flush();
            }
            catch (IOException)
            {
                // Standard output is gone (a closed pipe): nothing else to tell it.
            }
            catch (ObjectDisposedException)
            {
            }

            _writing.Clear();
            if (last)
            {
                return;
            }
        }
    }

    private void WriteChars(ReadOnlySpan<char> chars)
    {
        Span<byte> buffer = stackalloc byte[4096];
        var encoder = Encoding.UTF8;
        while (!chars.IsEmpty)
        {
            // 1,024 chars encode to at most 3,072 bytes (a lone surrogate at a chunk edge becomes U+FFFD, as Console does).
            var take = Math.Min(chars.Length, 1024);
            var n = encoder.GetBytes(chars[..take], buffer);
            _output.Write(buffer[..n]);
            chars = chars[take..];
        }
    }

    /// <summary>One line (plus the exception's lines), as the simple console logger writes it with SingleLine and UTC timestamps.</summary>
    internal static string Format(DateTimeOffset time, LogLevel level, string category, int eventId, string message, Exception? exception)
    {
        var line = new StringBuilder(64 + category.Length + message.Length);
        line.Append(time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff ", System.Globalization.CultureInfo.InvariantCulture))
            .Append(level switch
            {
                LogLevel.Trace => "trce",
                LogLevel.Debug => "dbug",
                LogLevel.Information => "info",
                LogLevel.Warning => "warn",
                LogLevel.Error => "fail",
                _ => "crit",
            })
            .Append(": ").Append(category).Append('[').Append(eventId).Append("] ")
            .Append(message.ReplaceLineEndings(" "));
        if (exception is not null)
        {
            line.Append(' ').Append(exception.ToString().ReplaceLineEndings(" "));
        }

        return line.Append('\n').ToString();
    }

    private sealed class Logger(BatchedConsoleLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            provider.Append(logLevel, Format(DateTimeOffset.UtcNow, logLevel, category, eventId.Id, formatter(state, exception), exception));
        }
    }
}
