namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Paged causal attention, one (token, query head) pair per work item: scores against the keys of positions 0…position of the
/// token's sequence found through its block table, a max-subtracted softmax, and the weighted sum of values.
/// </summary>
internal sealed unsafe class AttentionJob : IParallelWork
{
    public CpuTensor Query = null!;
    public CpuTensor Output = null!;
    public CpuKvCache Cache = null!;
    public int Layer;
    public ForwardBatch Batch = null!;
    public float[][] Scores = [];

    public void Execute(int worker, int workerCount)
    {
        var shape = Cache.Shape;
        var headDim = shape.HeadDim;
        var heads = Query.Columns / headDim;
        var group = heads / shape.KvHeads;
        var scale = 1f / MathF.Sqrt(headDim);
        var blockSize = shape.BlockSize;
        var (start, end) = WorkerPool.Split(Batch.TokenCount * heads, worker, workerCount);
        fixed (float* scores = Scores[worker])
        {
            for (var item = start; item < end; item++)
            {
                var token = item / heads;
                var head = item % heads;
                var kvHead = head / group;
                var table = Batch.BlockTable(Batch.SequenceIndices[token]);
                var length = Batch.Positions[token] + 1;
                var q = Query.Row(token) + head * headDim;
                var max = float.NegativeInfinity;
                for (var p = 0; p < length; p++)
                {
                    var slot = (long)table[p / blockSize] * blockSize + p % blockSize;
                    var s = VectorMath.Dot(q, Cache.Keys(Layer, slot) + kvHead * headDim, headDim) * scale;
                    scores[p] = s;
                    max = MathF.Max(max, s);
                }

                var sum = 0f;
                for (var p = 0; p < length; p++)
                {
                    var e = MathF.Exp(scores[p] - max);
                    scores[p] = e;
                    sum += e;
                }

                var output = Output.Row(token) + head * headDim;
                new Span<float>(output, headDim).Clear();
                var inverse = 1f / sum;
                for (var p = 0; p < length; p++)
                {
                    var slot = (long)table[p / blockSize] * blockSize + p % blockSize;
                    VectorMath.Axpy(scores[p] * inverse, Cache.Values(Layer, slot) + kvHead * headDim, output, headDim);
                }
            }
        }
    }
}
