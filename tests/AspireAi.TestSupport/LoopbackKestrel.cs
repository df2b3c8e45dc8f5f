using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.TestSupport;

/// <summary>
/// An in-process app (<see cref="WebApplicationFactory{TEntryPoint}"/>) on real Kestrel at a loopback port that the kernel
/// hands out at bind time (port 0), read back from the running server. A port found free beforehand and bound later can be
/// taken in between by any socket on the machine, an outgoing connection's ephemeral port included: a clean-clone CI run
/// failed so ("Failed to bind to address http://127.0.0.1:41369: address already in use", 2026-11-28). Apps built with
/// <c>WebApplication</c> do the same with <c>UseUrls("http://127.0.0.1:0")</c> and <c>app.Urls</c>; a server whose address
/// must be known before it starts holds a <see cref="ReservedPort"/>.
/// </summary>
public static class LoopbackKestrel
{
    /// <summary>Starts <paramref name="factory"/>'s app and returns its base address (no trailing slash).</summary>
    public static string StartOnAnyPort<TEntryPoint>(this WebApplicationFactory<TEntryPoint> factory) where TEntryPoint : class
    {
        factory.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        factory.StartServer();
        return factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
    }
}
