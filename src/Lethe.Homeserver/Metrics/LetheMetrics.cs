using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Lethe.Homeserver.Metrics;

/// <summary>
/// The server's metrics: instruments on a <see cref="Meter"/> of its own (so two servers in one process, as in the
/// tests, count separately), collected by a <see cref="MeterListener"/> and written in the Prometheus text format.
/// Instrument names are Prometheus names already; counters get the <c>_total</c> suffix when written.
/// </summary>
public sealed class LetheMetrics : IDisposable
{
    private static readonly long StartTimeSeconds = new DateTimeOffset(Process.GetCurrentProcess().StartTime).ToUnixTimeSeconds();

    private readonly Meter _meter = new("Lethe");
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();

    // Per instrument, per label set (rendered): the value. Counters add up; observable instruments report totals.
    private readonly Dictionary<Instrument, SortedDictionary<string, double>> _values = [];

    /// <summary>Creates the instruments and starts listening to them.</summary>
    public LetheMetrics()
    {
        RetentionPurgedEvents = _meter.CreateCounter<long>("lethe_retention_purged_events", description: "Events deleted by retention purge jobs");
        RetentionPurgeRuns = _meter.CreateCounter<long>("lethe_retention_purge_runs", description: "Retention purge job runs, by outcome");
        RetentionPurgeSeconds = _meter.CreateCounter<double>("lethe_retention_purge_seconds", description: "Time spent in retention purge job runs");
        SelfDestructedEvents = _meter.CreateCounter<long>("lethe_self_destructed_events", description: "Self-destructing (MSC2228) events redacted at their expiry");
        MediaUploadedBytes = _meter.CreateCounter<long>("lethe_media_uploaded_bytes", description: "Bytes of media uploaded");
        MediaThumbnailsGenerated = _meter.CreateCounter<long>("lethe_media_thumbnails_generated", description: "Thumbnails made (cache misses)");
        MediaDeleted = _meter.CreateCounter<long>("lethe_media_deleted", description: "Media items deleted, bytes included");
        _meter.CreateObservableCounter("process_cpu_seconds", () => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds, description: "CPU time used by the process");
        _meter.CreateObservableGauge("process_resident_memory_bytes", () => Environment.WorkingSet, description: "Resident memory of the process");
        _meter.CreateObservableGauge("process_start_time_seconds", () => StartTimeSeconds, description: "Start time of the process, seconds since the Unix epoch");

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == _meter)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>Events purged, tagged with the purge job.</summary>
    public Counter<long> RetentionPurgedEvents { get; }

    /// <summary>Purge runs, tagged with the job and outcome (<c>ok</c>, <c>error</c>).</summary>
    public Counter<long> RetentionPurgeRuns { get; }

    /// <summary>Seconds spent purging, tagged with the job.</summary>
    public Counter<double> RetentionPurgeSeconds { get; }

    /// <summary>Self-destructing events redacted.</summary>
    public Counter<long> SelfDestructedEvents { get; }

    /// <summary>Bytes of media uploaded.</summary>
    public Counter<long> MediaUploadedBytes { get; }

    /// <summary>Thumbnails generated.</summary>
    public Counter<long> MediaThumbnailsGenerated { get; }

    /// <summary>Media items deleted.</summary>
    public Counter<long> MediaDeleted { get; }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = Labels(tags);
        lock (_lock)
        {
            if (!_values.TryGetValue(instrument, out var series))
            {
                _values[instrument] = series = new SortedDictionary<string, double>(StringComparer.Ordinal);
            }

            // Counter measurements are increments; observable ones (read at collection) are current values.
            series[labels] = instrument.IsObservable ? value : series.GetValueOrDefault(labels) + value;
        }
    }

    /// <summary>Every metric in the Prometheus text exposition format (version 0.0.4).</summary>
    public string Render()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        lock (_lock)
        {
            foreach (var (instrument, series) in _values.OrderBy(kv => kv.Key.Name, StringComparer.Ordinal))
            {
                var isCounter = instrument is Counter<long> or Counter<double> or ObservableCounter<double> or ObservableCounter<long>;
                var name = instrument.Name + (isCounter ? "_total" : "");
                text.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description).Append('\n');
                text.Append("# TYPE ").Append(name).Append(isCounter ? " counter\n" : " gauge\n");
                foreach (var (labels, value) in series)
                {
                    text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                }
            }
        }

        return text.ToString();
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return "";
        }

        var pairs = new List<KeyValuePair<string, object?>>(tags.ToArray());
        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        var text = new StringBuilder("{");
        foreach (var (key, value) in pairs)
        {
            if (text.Length > 1)
            {
                text.Append(',');
            }

            var escaped = Convert.ToString(value, CultureInfo.InvariantCulture)!.Replace("\\", "\\\\", StringComparison.Ordinal)
                .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
            text.Append(key).Append("=\"").Append(escaped).Append('"');
        }

        return text.Append('}').ToString();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Dispose();
        _meter.Dispose();
    }
}
