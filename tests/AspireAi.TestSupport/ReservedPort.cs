using System.Net;
using System.Net.Sockets;

namespace AspireAi.TestSupport;

/// <summary>
/// A loopback TCP port held for a server a test starts later (a test that points a service at an address before anything
/// listens there): a socket bound to the port but not listening, so a connection is refused as where nothing runs, and no
/// other socket of the run can be given the port until <see cref="Release"/>, called right before the server binds it.
/// With only the number kept, a server another test started on port 0 in between was given the port once (an agents
/// test's run then reached that test's MCP server instead of failing).
/// </summary>
public sealed class ReservedPort : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public ReservedPort()
    {
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
    }

    public int Port { get; }

    /// <summary>Frees the port for the server about to bind it (and does nothing the second time).</summary>
    public void Release() => _socket.Dispose();

    public void Dispose() => _socket.Dispose();
}
