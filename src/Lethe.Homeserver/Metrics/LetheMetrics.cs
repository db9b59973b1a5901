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

    /// <summary>Upper bounds (seconds) of the latency histogram buckets: from a cached read to a slow long-poll.</summary>
    private static readonly double[] Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    // Per instrument, per label set (rendered): the value. Counters add up; observable instruments report totals.
    private readonly Dictionary<Instrument, SortedDictionary<string, double>> _values = [];
    private readonly Dictionary<Instrument, SortedDictionary<string, HistogramSeries>> _histograms = [];

    /// <summary>Creates the instruments and starts listening to them.</summary>
    public LetheMetrics()
    {
        HttpRequestSeconds = _meter.CreateHistogram<double>("lethe_http_request_duration_seconds", description: "Time to answer a request, by endpoint group, method and route");
        HttpResponses = _meter.CreateCounter<long>("lethe_http_responses", description: "Responses sent, by endpoint group and status code");
        EventsPersisted = _meter.CreateCounter<long>("lethe_events_persisted", description: "Room events persisted, by origin");
        SyncWaiters = _meter.CreateUpDownCounter<long>("lethe_sync_waiters", description: "Long-polling /sync requests waiting for news");
        _meter.CreateObservableCounter("dotnet_gc_collections", GcCollections, description: "Garbage collections, by generation");
        _meter.CreateObservableGauge("dotnet_gc_heap_bytes", () => GC.GetTotalMemory(false), description: "Bytes of the managed heap in use");
        _meter.CreateObservableCounter("dotnet_gc_pause_seconds", () => GC.GetTotalPauseDuration().TotalSeconds, description: "Time the process was paused by garbage collections");
        RetentionPurgedEvents = _meter.CreateCounter<long>("lethe_retention_purged_events", description: "Events deleted by retention purge jobs");
        RetentionPurgeRuns = _meter.CreateCounter<long>("lethe_retention_purge_runs", description: "Retention purge job runs, by outcome");
        RetentionPurgeSeconds = _meter.CreateCounter<double>("lethe_retention_purge_seconds", description: "Time spent in retention purge job runs");
        PrivacyGcItems = _meter.CreateCounter<long>("lethe_privacy_gc_items", description: "Personal data deleted by the privacy garbage collectors, by job");
        PrivacyGcRuns = _meter.CreateCounter<long>("lethe_privacy_gc_runs", description: "Privacy garbage collector runs, by job and outcome");
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

    /// <summary>Items deleted by the privacy GC, tagged with the job (<c>redactions</c>, <c>client_ips</c>, <c>forgotten_rooms</c>, <c>erasures</c>, <c>media_retention</c>).</summary>
    public Counter<long> PrivacyGcItems { get; }

    /// <summary>Privacy GC runs, tagged with the job and outcome (<c>ok</c>, <c>error</c>).</summary>
    public Counter<long> PrivacyGcRuns { get; }

    /// <summary>Counts one run of a privacy GC job and what it deleted; a failed run is counted as such and rethrown.</summary>
    public async Task<T> CountGcRunAsync<T>(string job, Func<Task<T>> run)
        where T : System.Numerics.INumber<T>
    {
        var tag = new KeyValuePair<string, object?>("job", job);
        T items;
        try
        {
            items = await run();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PrivacyGcRuns.Add(1, tag, new("outcome", "error"));
            throw;
        }

        PrivacyGcRuns.Add(1, tag, new("outcome", "ok"));
        PrivacyGcItems.Add(long.CreateTruncating(items), tag);
        return items;
    }

    /// <summary>Self-destructing events redacted.</summary>
    public Counter<long> SelfDestructedEvents { get; }

    /// <summary>Request latency, tagged with group, method and route pattern.</summary>
    public Histogram<double> HttpRequestSeconds { get; }

    /// <summary>Responses, tagged with group and status code.</summary>
    public Counter<long> HttpResponses { get; }

    /// <summary>Room events persisted, tagged with origin (<c>local</c>).</summary>
    public Counter<long> EventsPersisted { get; }

    /// <summary>Long-polling /sync requests currently waiting.</summary>
    public UpDownCounter<long> SyncWaiters { get; }

    /// <summary>Adds the database's activity counters (called once the database is open).</summary>
    public void Observe(Lethe.Storage.DatabaseStats stats)
    {
        var tick = 1.0 / Stopwatch.Frequency;
        _meter.CreateObservableCounter("lethe_database_reads", () => Volatile.Read(ref stats.Reads), description: "Database read operations finished");
        _meter.CreateObservableGauge("lethe_database_reads_in_progress", () => Volatile.Read(ref stats.ReadsInProgress), description: "Database read operations holding a connection now");
        _meter.CreateObservableCounter("lethe_database_writes", () => Volatile.Read(ref stats.Writes), description: "Database writes finished");
        _meter.CreateObservableCounter("lethe_database_write_transactions", () => Volatile.Read(ref stats.Transactions), description: "Database write transactions finished; SQLite commits the writes queued behind a busy writer together, so writes / transactions is the average group size");
        _meter.CreateObservableGauge("lethe_database_writes_waiting", () => Volatile.Read(ref stats.WritesWaiting), description: "Write transactions waiting for the single SQLite writer now");
        _meter.CreateObservableCounter("lethe_database_write_wait_seconds", () => Volatile.Read(ref stats.WriteWaitTicks) * tick, description: "Time write transactions spent waiting for the writer");
        _meter.CreateObservableCounter("lethe_database_write_seconds", () => Volatile.Read(ref stats.WriteTicks) * tick, description: "Time spent inside write transactions");
    }

    private static IEnumerable<Measurement<long>> GcCollections()
    {
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
        {
            yield return new Measurement<long>(GC.CollectionCount(generation), new KeyValuePair<string, object?>("generation", generation.ToString(CultureInfo.InvariantCulture)));
        }
    }

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
            if (instrument is Histogram<double>)
            {
                if (!_histograms.TryGetValue(instrument, out var histograms))
                {
                    _histograms[instrument] = histograms = new SortedDictionary<string, HistogramSeries>(StringComparer.Ordinal);
                }

                if (!histograms.TryGetValue(labels, out var h))
                {
                    histograms[labels] = h = new HistogramSeries();
                }

                h.Add(value);
                return;
            }

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

            foreach (var (instrument, series) in _histograms.OrderBy(kv => kv.Key.Name, StringComparer.Ordinal))
            {
                var name = instrument.Name;
                text.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description).Append('\n');
                text.Append("# TYPE ").Append(name).Append(" histogram\n");
                foreach (var (labels, h) in series)
                {
                    long cumulative = 0;
                    for (var i = 0; i <= Buckets.Length; i++)
                    {
                        cumulative += h.Counts[i];
                        var le = i < Buckets.Length ? Buckets[i].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
                        text.Append(name).Append("_bucket").Append(WithLabel(labels, "le", le)).Append(' ').Append(cumulative).Append('\n');
                    }

                    text.Append(name).Append("_sum").Append(labels).Append(' ').Append(h.Sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                    text.Append(name).Append("_count").Append(labels).Append(' ').Append(h.Count).Append('\n');
                }
            }
        }

        return text.ToString();
    }

    private static string WithLabel(string labels, string key, string value) =>
        labels.Length == 0 ? $"{{{key}=\"{value}\"}}" : $"{labels[..^1]},{key}=\"{value}\"}}";

    /// <summary>One histogram series: a count per bucket (the last is +Inf), the sum and the count.</summary>
    private sealed class HistogramSeries
    {
        public long[] Counts { get; } = new long[Buckets.Length + 1];

        public double Sum { get; private set; }

        public long Count { get; private set; }

        public void Add(double value)
        {
            var i = 0;
            while (i < Buckets.Length && value > Buckets[i])
            {
                i++;
            }

            Counts[i]++;
            Sum += value;
            Count++;
        }
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
