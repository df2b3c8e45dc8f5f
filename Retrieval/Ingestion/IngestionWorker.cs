using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.Embeddings;
using Microsoft.Extensions.Options;

namespace AspireAi.Retrieval.Ingestion;

/// <summary>
/// Runs ingestion jobs one at a time (embedding is CPU-bound on Inference; parallel jobs would only interleave). When the
/// embedding service is unavailable a job waits with exponential back-off (1 s doubling to 60 s) and resumes at the
/// first chunk not yet embedded; vectors already computed are kept for it while this process lives.
/// </summary>
internal sealed class IngestionWorker(
    IngestionStore jobs, CollectionStore collections, EmbeddingService embeddings, IngestionPipeline pipeline,
    IOptions<RetrievalOptions> options, ILogger<IngestionWorker> logger) : BackgroundService
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Dictionary<string, (float[]?[] Vectors, int Attempts)> _partial = [];

    /// <summary>Wakes the worker at once (a job was just queued).</summary>
    public void Signal() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield(); // let start-up continue: the loop runs beside the server
        await jobs.RequeueInterruptedAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await jobs.ClaimNextAsync(stoppingToken) is { } claimed)
                {
                    await RunAsync(claimed.Tenant, claimed.Job, claimed.Work, stoppingToken);
                    continue;
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogError(ex, "Ingestion worker error; retrying");
            }

            await _wake.WaitAsync(Poll, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task RunAsync(string tenant, IngestionJob job, IngestionWork work, CancellationToken ct)
    {
        var chunks = work.Document.Chunks;
        var (vectors, attempts) = _partial.TryGetValue(job.Id, out var partial) ? partial : (new float[]?[chunks.Count], 0);
        var done = Array.IndexOf(vectors, null);
        done = done < 0 ? chunks.Count : done;
        try
        {
            var batch = options.Value.EmbeddingBatchSize;
            while (done < chunks.Count)
            {
                var count = Math.Min(batch, chunks.Count - done);
                var embedded = await embeddings.EmbedAsync(work.EmbeddingModel, [.. chunks.Skip(done).Take(count)], ct);
                embedded.CopyTo(vectors, done);
                done += count;
                if (!await jobs.ProgressAsync(job.Id, done, ct))
                {
                    _partial.Remove(job.Id); // cancelled (document or collection deleted)
                    return;
                }
            }

            _partial.Remove(job.Id);
            var collection = await collections.GetAsync(tenant, job.Collection, ct);
            var committed = collection is not null && await pipeline.CommitAsync(tenant, collection, work.Document, vectors!, ct);
            await jobs.FinishAsync(job.Id, committed ? "succeeded" : "cancelled", committed ? null : $"Collection '{job.Collection}' was deleted.", ct);
            logger.LogInformation("Ingestion {Job}: {Document} ({Chunks} chunks) {Status}", job.Id, job.DocumentId, chunks.Count, committed ? "done" : "cancelled");
        }
        catch (EmbeddingUnavailableException ex)
        {
            attempts++;
            _partial[job.Id] = (vectors, attempts);
            var delay = TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, attempts - 1)));
            logger.LogWarning("Ingestion {Job} waits {Delay}s for the embedding service ({Done}/{Total} chunks embedded): {Error}",
                job.Id, delay.TotalSeconds, done, chunks.Count, ex.Message);
            await jobs.WaitAsync(job.Id, ex.Message, DateTimeOffset.UtcNow + delay, ct);
        }
        catch (EmbeddingRejectedException ex)
        {
            _partial.Remove(job.Id);
            await jobs.FinishAsync(job.Id, "failed", ex.Message, ct);
        }
    }
}
