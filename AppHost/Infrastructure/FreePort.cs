using System.Net;
using System.Net.Sockets;

namespace AspireAi.AppHost.Infrastructure;

internal static class FreePort
{
    /// <summary>A loopback port free right now: the kernel picks it, we release it for the server to bind.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
