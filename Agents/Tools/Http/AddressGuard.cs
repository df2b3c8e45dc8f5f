using System.Net;
using System.Net.Sockets;

namespace AspireAi.Agents.Tools.Http;

/// <summary>
/// Which addresses <c>http_fetch</c> may connect to: public unicast only. Checked on the addresses a name resolves to,
/// and the connection is made to the checked address itself, so a name cannot resolve to something else in between
/// (DNS rebinding). Ranges from RFC 6890 (special-purpose registries) and RFC 4291/4193 for IPv6.
/// </summary>
public static class AddressGuard
{
    private static readonly (IPAddress Network, int Prefix, string Why)[] BlockedV4 =
    [
        (IPAddress.Parse("0.0.0.0"), 8, "'this network'"),
        (IPAddress.Parse("10.0.0.0"), 8, "private (RFC 1918)"),
        (IPAddress.Parse("100.64.0.0"), 10, "carrier-grade NAT"),
        (IPAddress.Parse("127.0.0.0"), 8, "loopback"),
        (IPAddress.Parse("169.254.0.0"), 16, "link-local (cloud metadata lives at 169.254.169.254)"),
        (IPAddress.Parse("172.16.0.0"), 12, "private (RFC 1918)"),
        (IPAddress.Parse("192.0.0.0"), 24, "IETF protocol assignments"),
        (IPAddress.Parse("192.0.2.0"), 24, "documentation"),
        (IPAddress.Parse("192.168.0.0"), 16, "private (RFC 1918)"),
        (IPAddress.Parse("198.18.0.0"), 15, "benchmarking"),
        (IPAddress.Parse("198.51.100.0"), 24, "documentation"),
        (IPAddress.Parse("203.0.113.0"), 24, "documentation"),
        (IPAddress.Parse("224.0.0.0"), 4, "multicast"),
        (IPAddress.Parse("240.0.0.0"), 4, "reserved"),
    ];

    /// <summary>Why <paramref name="address"/> must not be reached, or null when it is a public unicast address.</summary>
    public static string? WhyBlocked(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            foreach (var (network, prefix, why) in BlockedV4)
            {
                if (InPrefix(bytes, network.GetAddressBytes(), prefix))
                {
                    return why;
                }
            }

            return null;
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return "not an IP address";
        }

        if (IPAddress.IPv6Loopback.Equals(address) || IPAddress.IPv6Any.Equals(address))
        {
            return "loopback or unspecified";
        }

        var v6 = address.GetAddressBytes();
        if ((v6[0] & 0xFE) == 0xFC)
        {
            return "unique local (fc00::/7)";
        }

        if (v6[0] == 0xFE && (v6[1] & 0xC0) == 0x80)
        {
            return "link-local (fe80::/10)";
        }

        if (v6[0] == 0xFF)
        {
            return "multicast";
        }

        // NAT64 (64:ff9b::/96) and IPv4-compatible addresses carry an IPv4 address: judge that one.
        if (InPrefix(v6, IPAddress.Parse("64:ff9b::").GetAddressBytes(), 96) || InPrefix(v6, new byte[16], 96))
        {
            return WhyBlocked(new IPAddress(v6[12..16]));
        }

        return null;
    }

    private static bool InPrefix(byte[] address, byte[] network, int prefix)
    {
        for (var bit = 0; bit < prefix; bit += 8)
        {
            var mask = prefix - bit >= 8 ? 0xFF : (byte)(0xFF << (8 - (prefix - bit)));
            if ((address[bit / 8] & mask) != (network[bit / 8] & mask))
            {
                return false;
            }
        }

        return true;
    }
}
