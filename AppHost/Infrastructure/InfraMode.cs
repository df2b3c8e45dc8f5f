using System.Diagnostics;

namespace AspireAi.AppHost.Infrastructure;

/// <summary>Where Redis, PostgreSQL and Qdrant come from: containers, or this machine's own binaries.</summary>
internal enum InfraMode
{
    Containers,
    Local,
}

internal static class InfraModeSelector
{
    /// <summary>
    /// Decides the mode before any resource is declared: a container resource on a machine without a container
    /// runtime never becomes healthy, and everything that waits for it would hang. Publishing (the manifest for azd or
    /// Kubernetes) always describes containers, without probing this machine: the target runs containers, not our binaries.
    /// </summary>
    public static (InfraMode Mode, string Reason) Select(string? requested, bool publishing)
    {
        var mode = requested?.Trim().ToLowerInvariant();
        if (publishing)
        {
            return mode is null or "" or "auto" or "containers"
                ? (InfraMode.Containers, "publishing describes containers")
                : throw new AppHostConfigurationException(
                    $"--infra '{requested}' cannot be published: a deployment runs Redis, PostgreSQL and Qdrant as containers. " +
                    "Leave --infra out (or give --infra containers) when publishing.");
        }

        switch (mode)
        {
            case "containers":
                return (InfraMode.Containers, "--infra containers was given");
            case "local":
                return (InfraMode.Local, "--infra local was given");
            case null or "" or "auto":
                var runtime = FindContainerRuntime();
                return runtime is null
                    ? (InfraMode.Local, "no container runtime answered `docker info` or `podman info`")
                    : (InfraMode.Containers, $"`{runtime} info` answered");
            default:
                throw new AppHostConfigurationException(
                    $"--infra '{requested}' is not a mode: use containers, local or auto (the default).");
        }
    }

    /// <summary>
    /// Before a containers run starts anything, that a container runtime answers: without one the containers never start
    /// and every service waits for them for ever (an explicit <c>--infra containers</c> is not probed at selection), so the
    /// run stops at once with what to do instead. At start rather than at selection, because tests build the containers
    /// model on machines without a runtime.
    /// </summary>
    public static void CheckContainerRuntimeAtStart(this IDistributedApplicationBuilder builder, InfraMode infra)
    {
        if (infra != InfraMode.Containers || !builder.ExecutionContext.IsRunMode)
        {
            return;
        }

        builder.Eventing.Subscribe<BeforeStartEvent>((_, _) => FindContainerRuntime() is null
            ? throw new AppHostConfigurationException(
                "this run puts Redis, PostgreSQL and Qdrant in containers (--infra containers), but no container runtime " +
                "answered `docker info` or `podman info`: start Docker or Podman, or run with --infra local (Redis and " +
                "PostgreSQL from this machine's binaries).")
            : Task.CompletedTask);
    }

    /// <summary>The container runtime whose <c>info</c> answers within seconds (docker first, then podman), or null.</summary>
    internal static string? FindContainerRuntime()
    {
        foreach (var runtime in new[] { "docker", "podman" })
        {
            if (LocalBinaries.Find(runtime) is not { } path)
            {
                continue;
            }

            try
            {
                using var process = Process.Start(new ProcessStartInfo(path, "info")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                })!;
                // A daemon that does not answer in a few seconds is as good as absent for a local run.
                if (process.WaitForExit(TimeSpan.FromSeconds(10)) && process.ExitCode == 0)
                {
                    return runtime;
                }

                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Found on PATH but not executable: treat as absent.
            }
        }

        return null;
    }
}

/// <summary>A configuration or machine problem the user can fix; printed as one clear message, never a stack trace.</summary>
internal sealed class AppHostConfigurationException(string message) : Exception(message);
