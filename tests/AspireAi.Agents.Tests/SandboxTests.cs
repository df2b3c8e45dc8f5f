using AspireAi.Agents.Tools.Sandbox;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Tests;

/// <summary>The bubblewrap sandbox of run_code, for real: no network, nothing writable but scratch, limits on processes, CPU and wall time.</summary>
public sealed class SandboxTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("aspireai-sandbox-test-").FullName;
    private readonly BubblewrapSandbox _sandbox = new(Options.Create(new AgentsOptions
    {
        Sandbox = new SandboxOptions { CpuSeconds = 2, WallTimeout = TimeSpan.FromSeconds(4), MaxProcesses = 16 },
    }), NullLogger<BubblewrapSandbox>.Instance);

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Code_runs_and_writes_its_scratch_folder()
    {
        var result = await _sandbox.RunAsync("python", "open('out.txt','w').write('hello'); print(6*7)", _scratch, CancellationToken.None);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("42", result.Stdout.Trim());
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(_scratch, "out.txt")));
    }

    [Fact]
    public async Task Network_access_fails()
    {
        var result = await _sandbox.RunAsync("python", """
            import socket
            s = socket.socket(); s.settimeout(2)
            s.connect(("1.1.1.1", 80))
            print("connected")
            """, _scratch, CancellationToken.None);
        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("connected", result.Stdout);
        Assert.Contains("Network is unreachable", result.Stderr);
    }

    [Fact]
    public async Task Writing_outside_scratch_fails_and_leaves_nothing()
    {
        var outside = Path.Combine(Path.GetTempPath(), $"aspireai-escape-{Guid.NewGuid():N}");
        var result = await _sandbox.RunAsync("sh", $"echo pwned > {outside}; echo pwned > /etc/aspireai-pwned; echo pwned > {Path.Combine(_scratch, "..", "x")}", _scratch, CancellationToken.None);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Read-only file system", result.Stderr);
        Assert.False(File.Exists(outside)); // /tmp inside is a private tmpfs: the host's /tmp is untouched
        Assert.False(File.Exists("/etc/aspireai-pwned"));
    }

    [Fact]
    public async Task A_fork_bomb_is_contained_by_the_process_limit()
    {
        var result = await _sandbox.RunAsync("python", """
            import os
            n = 0
            try:
                while True:
                    if os.fork() == 0:
                        import time; time.sleep(30); os._exit(0)
                    n += 1
            except OSError as e:
                print("fork refused after", n, e)
            """, _scratch, CancellationToken.None);
        Assert.Contains("fork refused after", result.Stdout);
        var forks = int.Parse(result.Stdout.Split("after ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(forks < 16, $"{forks} forks succeeded");
    }

    [Fact]
    public async Task Code_running_past_its_limits_is_stopped_and_says_why()
    {
        // A wall timeout far beyond the CPU limit, so that a busy machine cannot turn this into a wall-time stop.
        var cpuBound = new BubblewrapSandbox(Options.Create(new AgentsOptions
        {
            Sandbox = new SandboxOptions { CpuSeconds = 1, WallTimeout = TimeSpan.FromSeconds(60) },
        }), NullLogger<BubblewrapSandbox>.Instance);
        var busy = await cpuBound.RunAsync("python", "while True: pass", _scratch, CancellationToken.None);
        Assert.NotNull(busy.StoppedBecause);
        Assert.Contains("CPU-time limit", busy.StoppedBecause);

        var started = DateTime.UtcNow;
        var sleeping = await _sandbox.RunAsync("sh", "sleep 60", _scratch, CancellationToken.None);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
        Assert.Contains("wall-time limit", sleeping.StoppedBecause);
    }

    [Fact]
    public async Task Without_bubblewrap_code_is_refused_never_run_unsandboxed()
    {
        var missing = new BubblewrapSandbox(Options.Create(new AgentsOptions { Sandbox = new SandboxOptions { BwrapPath = "/nonexistent/bwrap" } }),
            NullLogger<BubblewrapSandbox>.Instance);
        var error = await Assert.ThrowsAsync<SandboxUnavailableException>(() =>
            missing.RunAsync("sh", $"touch {Path.Combine(_scratch, "ran")}", _scratch, CancellationToken.None));
        Assert.Contains("bubblewrap", error.Message);
        Assert.False(File.Exists(Path.Combine(_scratch, "ran")));
    }
}
