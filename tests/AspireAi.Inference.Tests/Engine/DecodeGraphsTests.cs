using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;

namespace AspireAi.Inference.Tests.Engine;

/// <summary>
/// Which steps the engine replays as graphs, and the batches the model sees: padding, context bounds, recording again
/// when buffers moved, falling back to eager steps when recording fails. The model here records what it is asked to run
/// instead of running it: graphs exist only on CUDA, which CI lacks (GpuCheck's seeded-sampling check compares replayed
/// steps with eager ones on the GPU).
/// </summary>
public sealed class DecodeGraphsTests
{
    private const int BlockSize = 16;
    private const int PaddingBlock = 63;

    private static EngineOptions Options(int maxNumSeqs = 32) =>
        new() { BlockSize = BlockSize, KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = maxNumSeqs };

    /// <summary>A decode batch: one token per sequence at the given positions, each needing logits.</summary>
    private static ForwardBatch Decode(params int[] positions)
    {
        var batch = new ForwardBatch(64, 32, 64);
        for (var s = 0; s < positions.Length; s++)
        {
            var index = batch.AddSequence([s]);
            batch.AddToken(100 + s, positions[s], index, s * BlockSize + positions[s] % BlockSize, needsLogits: true);
        }

        return batch;
    }

    [Fact]
    public void A_decode_step_is_padded_to_the_next_size_recorded_once_then_replayed()
    {
        var model = new RecordingModel();
        using var graphs = new DecodeGraphs(model, Options(), PaddingBlock);

        var first = Decode(5, 300, 17, 9, 40);
        Assert.True(graphs.TryRun(first, null!, out _));
        var (tokens, context, paddingSlots) = Assert.Single(model.Eager);
        Assert.Equal(8, tokens);
        Assert.Equal(512, context); // 301 positions, rounded up to a power of two
        Assert.Equal([PaddingBlock * BlockSize, PaddingBlock * BlockSize, PaddingBlock * BlockSize], paddingSlots);
        Assert.Equal(1, graphs.Recordings);
        Assert.Equal(0, graphs.Replays);
        Assert.Equal(8, first.SequenceCount);
        Assert.Equal(8, first.LogitCount);
        Assert.Equal([100, 101, 102, 103, 104, 0, 0, 0], first.TokenIds.ToArray());
        Assert.Equal(PaddingBlock, first.BlockTable(7)[0]);

        // Six sequences, the longest at 400 positions: the same (8, 512) graph.
        Assert.True(graphs.TryRun(Decode(1, 2, 3, 4, 5, 399), null!, out _));
        Assert.Single(model.Eager);
        Assert.Equal(1, graphs.Replays);
        var replay = Assert.Single(model.Graphs).Replayed;
        Assert.Equal([(8, 512)], replay);

        // A longer context bound and a larger size are other graphs.
        Assert.True(graphs.TryRun(Decode(600), null!, out _));
        Assert.True(graphs.TryRun(Decode(Enumerable.Range(0, 9).ToArray()), null!, out _));
        Assert.Equal([(8, 512), (1, 1024), (16, 256)], model.Eager.Select(e => (e.Tokens, e.Context)).ToArray());
        Assert.Equal(3, graphs.Recordings);
    }

    [Fact]
    public void Steps_with_prefill_chunks_or_tokens_without_logits_run_eagerly_untouched()
    {
        var model = new RecordingModel();
        using var graphs = new DecodeGraphs(model, Options(), PaddingBlock);

        var prefill = new ForwardBatch(64, 32, 64);
        var s = prefill.AddSequence([0]);
        prefill.AddToken(1, 0, s, 0, needsLogits: false);
        prefill.AddToken(2, 1, s, 1, needsLogits: true);
        Assert.False(graphs.TryRun(prefill, null!, out _));
        Assert.Equal(2, prefill.TokenCount);

        var midPrompt = new ForwardBatch(64, 32, 64);
        midPrompt.AddToken(3, 7, midPrompt.AddSequence([0]), 7, needsLogits: false);
        Assert.False(graphs.TryRun(midPrompt, null!, out _));
        Assert.Empty(model.Eager);
    }

    [Fact]
    public void Sizes_stop_at_the_most_sequences_a_step_may_hold()
    {
        var model = new RecordingModel();
        using var graphs = new DecodeGraphs(model, Options(maxNumSeqs: 6), PaddingBlock);
        Assert.True(graphs.TryRun(Decode(1, 2, 3, 4, 5), null!, out _));
        Assert.Equal(6, model.Eager.Single().Tokens);
    }

    [Fact]
    public void A_graph_whose_buffers_moved_is_recorded_again()
    {
        var model = new RecordingModel();
        using var graphs = new DecodeGraphs(model, Options(), PaddingBlock);
        Assert.True(graphs.TryRun(Decode(3), null!, out _));
        model.Graphs[0].Current = false;
        Assert.True(graphs.TryRun(Decode(4), null!, out _));
        Assert.Equal(2, model.Eager.Count);
        Assert.Equal(2, graphs.Recordings);
        Assert.True(model.Graphs[0].Disposed);
        Assert.Equal(0, graphs.Replays);
    }

    [Fact]
    public void A_failed_recording_keeps_the_step_and_turns_graphs_off()
    {
        var model = new RecordingModel { RecordingFails = true };
        using var graphs = new DecodeGraphs(model, Options(), PaddingBlock);
        Assert.True(graphs.TryRun(Decode(3), null!, out _)); // the eager run already produced this step's logits
        Assert.Contains("1-token step", graphs.Failure);
        Assert.False(graphs.TryRun(Decode(4), null!, out _));
        Assert.Single(model.Eager);
    }

    private sealed class RecordingModel : IForwardModel
    {
        public List<(int Tokens, int Context, int[] PaddingSlots)> Eager { get; } = [];

        public List<RecordedGraph> Graphs { get; } = [];

        public bool RecordingFails { get; init; }

        public ModelConfig Config { get; } = ModelShapes.Llama32_1B(4096);

        public int MaxBatchTokens => 64;

        public int MaxLogitRows => 64;

        public IBackend Backend => throw new NotSupportedException("nothing runs here");

        public long WeightBytesPerStep => 0;

        public bool CanCaptureSteps => true;

        public KvCacheShape KvCacheShape(int blockSize, int blockCount) => throw new NotSupportedException();

        public DeviceTensor? ForwardToLogits(ForwardBatch batch, PagedKvCache cache)
        {
            var padding = batch.Slots.ToArray().Where((_, t) => batch.TokenIds[t] == 0).ToArray();
            Eager.Add((batch.TokenCount, batch.MaxContextLength, padding));
            return null;
        }

        public IStepGraph CaptureStep(ForwardBatch batch, PagedKvCache cache)
        {
            if (RecordingFails)
            {
                throw new InvalidOperationException("capture refused");
            }

            var graph = new RecordedGraph();
            Graphs.Add(graph);
            return graph;
        }

        public void Dispose()
        {
        }
    }

    private sealed class RecordedGraph : IStepGraph
    {
        public List<(int Tokens, int Context)> Replayed { get; } = [];

        public bool Current { get; set; } = true;

        public bool Disposed { get; private set; }

        public bool IsCurrent => Current;

        public DeviceTensor? Replay(ForwardBatch batch)
        {
            Replayed.Add((batch.TokenCount, batch.MaxContextLength));
            return null;
        }

        public void Dispose() => Disposed = true;
    }
}
