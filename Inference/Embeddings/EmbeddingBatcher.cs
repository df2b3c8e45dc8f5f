namespace AspireAi.Inference.Embeddings;

/// <summary>
/// Runs the inputs of a request through the model in batches of similar length, one ONNX call at a time per replica.
/// </summary>
/// <remarks>
/// Sorting by token count before cutting batches means a batch pads to its own longest input, not the request's: on a
/// mix of 10- and 250-token chunks that is most of the work saved. Calls are serialised because each already uses every
/// core (intra-op threads); two at once would only contend.
/// </remarks>
internal sealed class EmbeddingBatcher(int batchSize)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<float[][]> EmbedAsync(IEmbeddingModel model, IReadOnlyList<int[]> inputs, CancellationToken cancellationToken)
    {
        var order = Enumerable.Range(0, inputs.Count).OrderBy(i => inputs[i].Length).ToArray();
        var vectors = new float[inputs.Count][];
        for (var start = 0; start < order.Length; start += batchSize)
        {
            var slice = order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray();
            await _gate.WaitAsync(cancellationToken);
            float[][] batch;
            try
            {
                // Off the request thread: a batch is tens of milliseconds of CPU.
                batch = await Task.Run(() => model.Embed([.. slice.Select(i => inputs[i])], cancellationToken), cancellationToken);
            }
            finally
            {
                _gate.Release();
            }

            for (var j = 0; j < slice.Length; j++)
            {
                vectors[slice[j]] = batch[j];
            }
        }

        return vectors;
    }
}
