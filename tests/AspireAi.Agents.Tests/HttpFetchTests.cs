using System.Net;
using AspireAi.Agents.Tools;
using AspireAi.Agents.Tools.Http;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Tests;

/// <summary>http_fetch refuses anything but public addresses, after DNS resolution, even for allowlisted names.</summary>
public sealed class HttpFetchTests
{
    private readonly HttpFetchTool _tool = new(Options.Create(new AgentsOptions()));

    [Theory]
    [InlineData("http://127.0.0.1:8080/", "127.0.0.1", "loopback")]
    [InlineData("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local")]
    [InlineData("http://10.1.2.3/", "10.1.2.3", "private")]
    [InlineData("http://192.168.1.1/", "192.168.1.1", "private")]
    [InlineData("http://[::1]/", "[::1]", "loopback")]
    [InlineData("http://[::ffff:169.254.169.254]/", "[::ffff:169.254.169.254]", "link-local")]
    [InlineData("http://localhost:5000/admin", "localhost", "loopback")]
    public async Task Allowlisted_hosts_that_are_or_resolve_to_internal_addresses_are_refused(string url, string host, string kind)
    {
        // A local server answers on loopback: a refusal is the guard's doing, not a closed port.
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var error = await Assert.ThrowsAsync<ToolException>(() => _tool.FetchAsync(url, [host.Trim('[', ']').ToLowerInvariant(), host.ToLowerInvariant()], CancellationToken.None));
        Assert.Contains("Refused", error.Message);
        Assert.Contains(kind, error.Message);
    }

    [Fact]
    public async Task Hosts_off_the_allowlist_and_other_schemes_are_refused_before_any_connection()
    {
        var offList = await Assert.ThrowsAsync<ToolException>(() => _tool.FetchAsync("https://example.org/", ["example.com"], CancellationToken.None));
        Assert.Contains("not on this agent's allowlist", offList.Message);
        var file = await Assert.ThrowsAsync<ToolException>(() => _tool.FetchAsync("file:///etc/passwd", ["example.com"], CancellationToken.None));
        Assert.Contains("not an http or https URL", file.Message);
        var lookalike = await Assert.ThrowsAsync<ToolException>(() => _tool.FetchAsync("https://evilexample.com/", ["*.example.com"], CancellationToken.None));
        Assert.Contains("allowlist", lookalike.Message);
    }

    [Theory]
    [InlineData("8.8.8.8", null)]
    [InlineData("2001:4860:4860::8888", null)]
    [InlineData("100.64.0.1", "carrier-grade NAT")]
    [InlineData("172.31.255.255", "private (RFC 1918)")]
    [InlineData("0.0.0.0", "'this network'")]
    [InlineData("fd00::1", "unique local (fc00::/7)")]
    [InlineData("fe80::1", "link-local (fe80::/10)")]
    [InlineData("64:ff9b::a9fe:a9fe", "link-local (cloud metadata lives at 169.254.169.254)")]
    public void The_guard_knows_public_from_special_purpose_addresses(string address, string? why) =>
        Assert.Equal(why, AddressGuard.WhyBlocked(IPAddress.Parse(address)));
}
