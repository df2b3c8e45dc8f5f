using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Runs;

/// <summary>
/// Owns the runs this instance executes. A run is executed only under a lease in PostgreSQL (owner + expiry, renewed while
/// it runs), so one instance executes it at a time. Unfinished runs without a live lease — this instance's or another's,
/// stopped or crashed — are found every <see cref="AgentsOptions.OrphanScanInterval"/> and resumed from their last completed
/// step. A graceful stop cancels the runs here and gives their leases back at once.
/// </summary>
public sealed class RunSupervisor(IServiceProvider services, RunStore store, RunEventHub hub, IOptions<AgentsOptions> options, ILogger<RunSupervisor> logger)
    : BackgroundService
{
    private readonly string _owner = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
    private readonly ConcurrentDictionary<string, Task> _running = new();
    private CancellationToken _stopping = CancellationToken.None;

    /// <summary>Starts executing <paramref name="runId"/> here unless another instance holds it.</summary>
    public async Task<bool> StartAsync(string runId)
    {
        // Reserved before the claim: the request that created the run and the orphan scan may both try to start it.
        var gate = new TaskCompletionSource();
        if (!_running.TryAdd(runId, gate.Task))
        {
            return false;
        }

        var record = await store.TryClaimAsync(runId, _owner, options.Value.RunLease, _stopping) ? await store.GetAsync(runId, _stopping) : null;
        if (record is null)
        {
            _running.TryRemove(runId, out _);
            return false;
        }

        var task = Task.Run(async () =>
        {
            await gate.Task;
            try
            {
                await services.GetRequiredService<RunExecutor>().ExecuteAsync(record, _stopping);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Run {RunId} crashed", runId);
            }
            finally
            {
                _running.TryRemove(runId, out _);
                hub.Detach(runId);
            }
        });
        _running[runId] = task;
        gate.SetResult();
        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        var lease = options.Value.RunLease;
        var lastRenewal = DateTimeOffset.UtcNow;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (DateTimeOffset.UtcNow - lastRenewal > lease / 3 && !_running.IsEmpty)
                {
                    await store.RenewAsync([.. _running.Keys], _owner, lease, stoppingToken);
                    lastRenewal = DateTimeOffset.UtcNow;
                }

                foreach (var runId in await store.OrphanedAsync(16, stoppingToken))
                {
                    if (await StartAsync(runId))
                    {
                        logger.LogInformation("Resuming run {RunId}", runId);
                    }
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Looking for runs to resume failed; trying again.");
            }

            try
            {
                await Task.Delay(TimeSpan.FromTicks(Math.Min(options.Value.OrphanScanInterval.Ticks, (lease / 3).Ticks)), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        var ids = _running.Keys.ToArray();
        await Task.WhenAll(_running.Values).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        if (ids.Length > 0)
        {
            try
            {
                await store.ReleaseAsync(ids, _owner, CancellationToken.None);
            }
            catch (Exception ex)
            {
                // Giving the leases back only saves another instance the wait: a stop must not fail for it (the database
                // gone, or its data source already disposed by a host torn down under load, seen in the restart tests).
                logger.LogWarning(ex, "Could not give back the leases of {Count} runs while stopping; they are resumed elsewhere once their leases expire ({Lease}).",
                    ids.Length, options.Value.RunLease);
            }
        }
    }
}
