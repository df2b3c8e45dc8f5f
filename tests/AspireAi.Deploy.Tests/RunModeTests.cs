using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
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
