using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Test apps on a loopback port that the kernel hands out at bind time (port 0), read back from the running server. A port
/// found free beforehand and bound later can be taken in between by any socket on the machine, an outgoing connection's
/// ephemeral port included: a clean-clone CI run failed so ("Failed to bind to address http://127.0.0.1:41369: address
/// already in use", the Retrieval app of an agents test, 2026-11-28).
/// </summary>
internal static class LoopbackKestrel
{
    /// <summary>The URL to give <c>UseUrls</c>: loopback, any free port.</summary>
    public const string AnyPortUrl = "http://127.0.0.1:0";

    /// <summary>Starts <paramref name="factory"/>'s app on real Kestrel at a loopback port of the kernel's choice; its base address.</summary>
    public static string StartOnAnyPort<TEntryPoint>(this WebApplicationFactory<TEntryPoint> factory) where TEntryPoint : class
    {
        factory.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        factory.StartServer();
        return Address(factory.Services);
    }

    /// <summary>The base address a started server listens at (no trailing slash).</summary>
    public static string Address(IServiceProvider services) =>
        services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
}
