using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Tools.Sandbox;

/// <summary>How sandboxed code ended.</summary>
public sealed record SandboxResult(int ExitCode, string Stdout, string Stderr, string? StoppedBecause)
{
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"exit_code: {ExitCode}\n");
        if (StoppedBecause is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"stopped: {StoppedBecause}\n");
        }

        text.Append("stdout:\n").Append(Stdout).Append("\nstderr:\n").Append(Stderr);
        return text.ToString();
    }
}

/// <summary>The sandbox cannot run on this machine: code is refused, never run unsandboxed.</summary>
public sealed class SandboxUnavailableException(string message) : Exception(message);

/// <summary>
/// Runs untrusted code in a bubblewrap sandbox: a separate process in new namespaces (no network: <c>--unshare-all</c>
/// leaves only a loopback-less net namespace; own PID namespace, killed with its parent), the host's filesystem read-only
/// (<c>--ro-bind / /</c>) with a private <c>/tmp</c> and one writable scratch folder, as an unprivileged user (nobody) when
/// the service runs as root, under <c>prlimit</c> CPU-time, address-space, process-count and file-size limits, and a wall
/// timeout after which the whole process tree is killed. bubblewrap is Debian's/Flatpak's maintained sandbox; a hand-made
/// namespace setup would repeat it with fewer eyes on it.
/// </summary>
public sealed class BubblewrapSandbox(IOptions<AgentsOptions> options, ILogger<BubblewrapSandbox> logger)
{
    private const string ScratchInSandbox = "/tmp/workspace";
    private readonly Lazy<Task<string?>> _unavailable = new(() => ProbeAsync(options.Value.Sandbox));

    /// <summary>Runs <paramref name="code"/> with the interpreter of <paramref name="language"/>, <paramref name="scratch"/> as the only writable folder.</summary>
    /// <exception cref="SandboxUnavailableException">bubblewrap or prlimit is missing or cannot create namespaces here.</exception>
    public async Task<SandboxResult> RunAsync(string language, string code, string scratch, CancellationToken ct)
    {
        var settings = options.Value.Sandbox;
        if (await _unavailable.Value is { } why)
        {
            throw new SandboxUnavailableException(why);
        }

        if (!settings.Languages.TryGetValue(language, out var interpreter))
        {
            throw new ToolException($"Unknown language '{language}'; available: {string.Join(", ", settings.Languages.Keys)}.");
        }

        Directory.CreateDirectory(scratch);
        var asRoot = Environment.IsPrivilegedProcess;
        if (asRoot && !OperatingSystem.IsWindows())
        {
            // The sandbox user must be able to write its scratch folder, and only that one.
            File.SetUnixFileMode(scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        }

        var start = new ProcessStartInfo(settings.PrlimitPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // RLIMIT_NPROC counts every task of the user: as nobody that is the sandbox alone; otherwise the service's own threads count too.
        var processLimit = asRoot ? settings.MaxProcesses : TasksOfCurrentUser() + settings.MaxProcesses;
        foreach (var arg in new[]
        {
            $"--cpu={settings.CpuSeconds}", $"--as={settings.MemoryBytes}", $"--nproc={processLimit}",
            $"--fsize={settings.MaxFileBytes}", "--nofile=256", "--core=0", "--",
        })
        {
            start.ArgumentList.Add(arg);
        }

        if (asRoot)
        {
            foreach (var arg in new[] { "setpriv", $"--reuid={settings.SandboxUid}", $"--regid={settings.SandboxUid}", "--clear-groups", "--" })
            {
                start.ArgumentList.Add(arg);
            }
        }

        foreach (var arg in new[]
        {
            settings.BwrapPath, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--bind", scratch, ScratchInSandbox, "--chdir", ScratchInSandbox,
            "--unshare-all", "--die-with-parent", "--new-session",
            "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", ScratchInSandbox,
            "--setenv", "LANG", "C.UTF-8", "--",
        })
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var arg in interpreter)
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add(code);
        using var process = Process.Start(start) ?? throw new SandboxUnavailableException($"Could not start {settings.PrlimitPath}.");
        process.StandardInput.Close();
        var stdout = ReadLimitedAsync(process.StandardOutput, settings.MaxOutputBytes);
        var stderr = ReadLimitedAsync(process.StandardError, settings.MaxOutputBytes);
        string? stopped = null;
        using var wall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wall.CancelAfter(settings.WallTimeout);
        try
        {
            await process.WaitForExitAsync(wall.Token);
        }
        catch (OperationCanceledException)
        {
            stopped = ct.IsCancellationRequested ? "the run was stopped" : $"wall-time limit of {settings.WallTimeout.TotalSeconds:0.#} s reached; the process tree was killed";
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }

        var exitCode = process.ExitCode;
        var errors = await stderr;
        stopped ??= exitCode switch
        {
            128 + 24 => $"CPU-time limit of {settings.CpuSeconds} s reached (SIGXCPU)",
            // bubblewrap's init reports a child killed by the kernel's limits as 128 + SIGKILL.
            128 + 9 => $"killed (SIGKILL): the CPU-time limit of {settings.CpuSeconds} s or the memory limit of {settings.MemoryBytes / (1024 * 1024)} MiB was reached",
            _ => null,
        };
        logger.LogDebug("Sandbox {Language} exited {ExitCode} ({Stopped})", language, exitCode, stopped);
        ct.ThrowIfCancellationRequested();
        return new SandboxResult(exitCode, await stdout, errors, stopped);
    }

    private static async Task<string> ReadLimitedAsync(StreamReader reader, int maxChars)
    {
        var text = new StringBuilder();
        var buffer = new char[4096];
        int n;
        var truncated = false;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            var take = Math.Min(n, maxChars - text.Length);
            if (take > 0)
            {
                text.Append(buffer, 0, take);
            }

            truncated |= take < n;
        }

        return truncated ? text.Append($"\n[output truncated at {maxChars} characters]").ToString() : text.ToString();
    }

    private static int TasksOfCurrentUser()
    {
        var uid = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
        var count = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (!int.TryParse(Path.GetFileName(dir), out _))
                {
                    continue;
                }

                var status = File.ReadAllLines(Path.Combine(dir, "status"));
                if (status.First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == uid)
                {
                    count += int.Parse(status.First(l => l.StartsWith("Threads:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // the process ended while being read
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return count;
    }

    /// <summary>Why the sandbox cannot work here (missing program, no user namespaces), or null when a trivial sandboxed command succeeds.</summary>
    private static async Task<string?> ProbeAsync(SandboxOptions settings)
    {
        try
        {
            var start = new ProcessStartInfo(settings.BwrapPath) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in new[] { "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent", "--", "/bin/true" })
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                return $"bubblewrap ({settings.BwrapPath}) cannot create a sandbox here (exit {process.ExitCode}): {error.Trim()}";
            }

            using var prlimit = Process.Start(new ProcessStartInfo(settings.PrlimitPath, "--version") { RedirectStandardOutput = true, UseShellExecute = false })!;
            await prlimit.WaitForExitAsync();
            return null;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return $"The sandbox needs bubblewrap ('{settings.BwrapPath}') and prlimit (util-linux): {ex.Message}. Install them (Debian/Ubuntu: apt-get install -y bubblewrap util-linux).";
        }
    }
}
