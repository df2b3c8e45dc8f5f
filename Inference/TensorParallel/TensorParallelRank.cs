using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// One rank's place in a tensor-parallel group, as its <see cref="LlamaModel"/> sees it: the configuration it computes with
/// (its share of heads, KV heads, FFN features and vocabulary), which part of each weight it loads, and the collectives
/// that join its partial results with the other ranks'.
/// </summary>
public sealed class TensorParallelRank(ShardPlan plan, int rank, IRankCollectives collectives)
{
    public ShardPlan Plan { get; } = plan;

    public int Rank { get; } = rank;

    public IRankCollectives Collectives { get; } = collectives;

    /// <summary>The model's configuration with this rank's head, KV head, FFN and vocabulary counts.</summary>
    public ModelConfig Config { get; } = plan.RankConfig(rank);

    /// <summary>
    /// Uploads this rank's part of <paramref name="tensor"/>, laid out as the weight called <paramref name="role"/> (its own
    /// name, or <c>output.weight</c> for a token embedding that doubles as the logits projection).
    /// </summary>
    public DeviceWeight LoadWeight(IBackend backend, TensorView tensor, string role)
    {
        using var slice = WeightSlice.Of(tensor, Plan.Shard(role, tensor.Type, tensor.Shape, Rank));
        return backend.LoadWeight(slice.View);
    }
}
