using System.ComponentModel;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Tools.Http;

/// <summary>
/// <c>http_fetch</c>: GET of an http(s) URL on a host the agent's definition allows, refused when the host resolves to any
/// loopback, private, link-local or otherwise non-public address (checked after DNS resolution, on every redirect hop,
/// and the socket connects to the checked address). Bodies are cut at <c>Agents:HttpFetch:MaxBytes</c>, the whole fetch
/// at <c>Agents:HttpFetch:Timeout</c>.
/// </summary>
public sealed class HttpFetchTool(IOptions<AgentsOptions> options) : IToolFactory
{
    /// <summary>Not from the factory on purpose: service discovery and the resilience handler must not touch these requests, and the guard lives in the connect callback.</summary>
    private readonly HttpClient _client = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        AutomaticDecompression = DecompressionMethods.All,
        ConnectCallback = ConnectToPublicAddressAsync,
        PooledConnectionLifetime = TimeSpan.FromMinutes(1),
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    public string Type => ToolTypes.HttpFetch;

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var allowed = spec.AllowedHosts ?? [];
        var function = AIFunctionFactory.Create(
            ([Description("The http or https URL to fetch.")] string url, CancellationToken cancellationToken = default) =>
                FetchAsync(url, allowed, cancellationToken),
            ToolTypes.HttpFetch,
            $"Fetches a web page or file by URL (GET) and returns its text. Allowed hosts: {string.Join(", ", allowed)}.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: true, RequiresApproval: false)]);
    }

    /// <summary>Fetches <paramref name="url"/>; a refusal or failure is a <see cref="ToolException"/> saying why.</summary>
    public async Task<string> FetchAsync(string url, IReadOnlyList<string> allowedHosts, CancellationToken ct)
    {
        var settings = options.Value.HttpFetch;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(settings.Timeout);
        var target = Parse(url);
        try
        {
            for (var hop = 0; ; hop++)
            {
                CheckHost(target, allowedHosts);
                using var request = new HttpRequestMessage(HttpMethod.Get, target);
                using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    if (hop >= settings.MaxRedirects)
                    {
                        throw new ToolException($"Too many redirects (more than {settings.MaxRedirects}) from {url}.");
                    }

                    target = Parse(new Uri(target, location).ToString());
                    continue;
                }

                var body = await ReadLimitedAsync(response, settings.MaxBytes, timeout.Token);
                return $"HTTP {(int)response.StatusCode} {response.Content.Headers.ContentType?.MediaType ?? "unknown type"} from {target}\n{body}";
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ToolException($"Fetching {target} took longer than {settings.Timeout.TotalSeconds:0.#} s.");
        }
        catch (HttpRequestException ex) when (ex.InnerException is ToolException refusal)
        {
            throw refusal;
        }
        catch (HttpRequestException ex)
        {
            throw new ToolException($"Fetching {target} failed: {ex.Message}");
        }
    }

    private static Uri Parse(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ToolException($"'{url}' is not an http or https URL.");
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new ToolException("URLs with credentials are not fetched.");
        }

        return uri;
    }

    private static void CheckHost(Uri uri, IReadOnlyList<string> allowedHosts)
    {
        var host = uri.IdnHost.TrimEnd('.').ToLowerInvariant();
        var allowed = allowedHosts.Any(pattern => pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.Ordinal) && host.Length > pattern.Length - 1
            : host == pattern);
        if (!allowed)
        {
            throw new ToolException($"Host '{host}' is not on this agent's allowlist ({string.Join(", ", allowedHosts)}).");
        }
    }

    private static async Task<string> ReadLimitedAsync(HttpResponseMessage response, int maxBytes, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[maxBytes + 1];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), ct)) > 0)
        {
            read += n;
        }

        var truncated = read > maxBytes;
        var text = Encoding.UTF8.GetString(buffer, 0, Math.Min(read, maxBytes));
        return truncated ? text + $"\n[truncated at {maxBytes} bytes]" : text;
    }

    /// <summary>Resolves the host, refuses if any address is not public, and connects to a checked address.</summary>
    private static async ValueTask<Stream> ConnectToPublicAddressAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        if (addresses.Length == 0)
        {
            throw new ToolException($"Host '{host}' did not resolve to any address.");
        }

        foreach (var address in addresses)
        {
            if (AddressGuard.WhyBlocked(address) is { } why)
            {
                throw new ToolException($"Refused: '{host}' resolves to {address}, a {why} address; http_fetch only reaches public addresses.");
            }
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
