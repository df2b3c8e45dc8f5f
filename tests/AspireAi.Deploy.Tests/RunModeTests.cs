using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using AspireAi.AppHost.Infrastructure;
using AspireAi.Deploy.Tests.Support;

namespace AspireAi.Deploy.Tests;

/// <summary>What the publishing changes leave of a local run (the model only; the AppHost is never started here).</summary>
public sealed class RunModeTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_prints_the_options_and_starts_nothing(string flag)
    {
        // Out of process, as `bash tools/run.sh --help` runs it: before, the flag was ignored and the whole system started.
        var result = await ProcessResult.RunAsync("dotnet", [PublishedManifest.AppHostAssembly, "--infra", "local", flag], TimeSpan.FromMinutes(1));

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.StartsWith("usage: bash tools/run.sh [options]", result.Output.TrimStart());
        Assert.All(["--infra", "--gateway-port", "--model", "--state-dir", "--inference-replicas"], option => Assert.Contains($"  {option} ", result.Output));
        Assert.DoesNotContain("Distributed application started", result.Output);
    }

    [Fact]
    public async Task Containers_without_a_container_runtime_stop_at_once_saying_what_to_do()
    {
        // Out of process, as a user runs it: before, the run waited for containers that never started, for ever.
        if (InfraModeSelector.FindContainerRuntime() is { } runtime)
        {
            Assert.Skip($"`{runtime} info` answers here: the run would start its containers");
        }

        var result = await ProcessResult.RunAsync("dotnet",
            [PublishedManifest.AppHostAssembly, "--infra", "containers", "--Parameters:gateway-master-key=sk-test"], TimeSpan.FromMinutes(1),
            // tools/run.sh's launch profile ("http"): a dashboard over plain HTTP, on ports the run never gets to open.
            new Dictionary<string, string>
            {
                ["ASPNETCORE_URLS"] = "http://localhost:15980",
                ["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = "http://localhost:19980",
                ["ASPIRE_RESOURCE_SERVICE_ENDPOINT_URL"] = "http://localhost:20980",
                ["ASPIRE_ALLOW_UNSECURED_TRANSPORT"] = "true",
            });

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("no container runtime answered `docker info` or `podman info`", result.Output);
        Assert.Contains("--infra local", result.Output);
        Assert.DoesNotContain("Distributed application started", result.Output);
    }

    [Fact]
    public async Task EveryServiceIsStillWaitedForOnItsHealthEndpoint()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--infra", "containers", "--Parameters:gateway-master-key=sk-test"],
            (options, _) => options.DisableDashboard = true, TestContext.Current.CancellationToken);
        foreach (var service in PublishedManifest.Services)
        {
            var resource = builder.Resources.Single(r => r.Name == service);
            // The probes are the health checks WaitFor waits on: /health (every check) and /alive (a subset of them), so a
            // service counts as healthy exactly when /health answers 200, as with WithHttpHealthCheck("/health") before.
            Assert.Equal([$"{service}_http_/alive_200_check", $"{service}_http_/health_200_check"],
                resource.Annotations.OfType<HealthCheckAnnotation>().Select(a => a.Key).Order());
        }

        // Publish-only settings add nothing to a local run: no GPU-profile or model parameter to ask for.
        Assert.DoesNotContain(builder.Resources, r => r.Name is "inference-gpu-profile" or "inference-model");
    }
}
