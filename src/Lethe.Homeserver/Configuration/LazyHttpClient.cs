namespace Lethe.Homeserver.Configuration;

/// <summary>
/// An outbound HTTP client (<see cref="OutboundAddressRules.CreateClient"/>) made on first use. A server that never
/// pushes nor previews never loads System.Net.Http (1.2 MiB of resident memory): code that holds one of these only
/// mentions this type, and the JIT loads HttpClient's assembly with the first method that names it.
/// </summary>
public sealed class LazyHttpClient(OutboundAddressRules rules, TimeSpan timeout) : IDisposable
{
    private HttpClient? _client;

    /// <summary>The client, made the first time it is asked for.</summary>
    public HttpClient Client => LazyInitializer.EnsureInitialized(ref _client, () => rules.CreateClient(timeout));

    /// <inheritdoc />
    public void Dispose() => _client?.Dispose();
}
