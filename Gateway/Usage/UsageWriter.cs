using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Usage;

/// <summary>
/// Collects usage records off the request path and writes them in batches (<c>Gateway:Usage:BatchSize</c>, at least every
/// <c>FlushSeconds</c>). On shutdown it drains what is pending before the host stops. A failing database costs records,
/// never requests: a batch that fails three times is dropped and counted (<c>aspireai.gateway.usage.dropped</c>).
/// Hosted services stop in reverse order, so Kestrel drains its last requests after this one's loop has ended: what they
/// record is written in <see cref="StoppedAsync"/>, which runs after every service has stopped.
/// </summary>
internal sealed class UsageWriter : BackgroundService, IHostedLifecycleService
{
    private readonly Channel<UsageRecord> _pending;
    private readonly IUsageStore _store;
    private readonly UsageOptions _options;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<UsageWriter> _logger;

    public UsageWriter(IUsageStore store, IOptions<GatewayOptions> options, GatewayMetrics metrics, ILogger<UsageWriter> logger)
    {
        (_store, _options, _metrics, _logger) = (store, options.Value.Usage, metrics, logger);
        _pending = Channel.CreateBounded<UsageRecord>(new BoundedChannelOptions(_options.MaxPending)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
        }, _ => _metrics.UsageDropped(1));
    }

    public void Record(UsageRecord record) => _pending.Writer.TryWrite(record);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<UsageRecord>(_options.BatchSize);
        var interval = TimeSpan.FromSeconds(_options.FlushSeconds);
        try
        {
            while (await _pending.Reader.WaitToReadAsync(stoppingToken))
            {
                // Gather for up to one interval so that a steady trickle is written in batches, not a row at a time.
                using var gather = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                gather.CancelAfter(interval);
                try
                {
                    while (batch.Count < _options.BatchSize && await _pending.Reader.WaitToReadAsync(gather.Token))
                    {
                        while (batch.Count < _options.BatchSize && _pending.Reader.TryRead(out var record))
                        {
                            batch.Add(record);
                        }
                    }
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }

                await WriteAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await WriteAsync(batch, CancellationToken.None); // what was being gathered when the host stopped
        await DrainAsync();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => DrainAsync();

    /// <summary>Writes everything still pending (the host gives hosted services their shutdown timeout for this).</summary>
    private async Task DrainAsync()
    {
        var batch = new List<UsageRecord>(_options.BatchSize);
        while (_pending.Reader.TryRead(out var record))
        {
            batch.Add(record);
            if (batch.Count == _options.BatchSize)
            {
                await WriteAsync(batch, CancellationToken.None);
                batch.Clear();
            }
        }

        await WriteAsync(batch, CancellationToken.None);
    }

    private async Task WriteAsync(List<UsageRecord> batch, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _store.WriteAsync(batch, CancellationToken.None);
                return;
            }
            catch (Exception ex) when (attempt < 3 && !ct.IsCancellationRequested)
            {
                _logger.LogWarning(ex, "Writing {Count} usage records failed (attempt {Attempt}); retrying", batch.Count, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), CancellationToken.None);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Dropped {Count} usage records: the usage store failed", batch.Count);
                _metrics.UsageDropped(batch.Count);
                return;
            }
        }
    }
}
