using AspireAi.Inference.Backends.Cuda;

namespace AspireAi.Inference.Tests.Cuda;

/// <summary>decode_persistent.cu's launch as the host plans it (no GPU needed).</summary>
public sealed class PersistentDecodeGeometryTests
{
    [Fact]
    public void A_block_takes_at_most_one_32_row_group_of_the_hidden_rows_a_consumer_warp()
    {
        Assert.NotNull(PersistentDecodeGeometry.For(6144, 6144, 48, 12, 128, 132, SharedBytes));  // 192 groups: 2 at most a block
        Assert.NotNull(PersistentDecodeGeometry.For(6144, 6144, 48, 12, 128, 28, SharedBytes));   // 7, one a consumer warp
        Assert.Null(PersistentDecodeGeometry.For(6144, 6144, 48, 12, 128, 27, SharedBytes));      // 8
    }

    [Fact]
    public void A_block_takes_at_most_one_feed_forward_row_a_consumer_thread()
    {
        Assert.NotNull(PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 132, SharedBytes));  // 109 rows a block
        Assert.NotNull(PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 64, SharedBytes));   // 224
        Assert.Null(PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 63, SharedBytes));      // 228
    }

    /// <summary>An H100/H200's 227 KB opt-in limit less the kernel's ~1 KB of static shared memory.</summary>
    private const int SharedBytes = 232448 - 1024;

    [Fact]
    public void Llama3_8B_on_an_H200_takes_six_stages_of_tiles_that_fill_32_kilobytes()
    {
        var g = PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 132, SharedBytes)!.Value;

        // A 4,096-wide nibble row is 2,048 bytes of codes and 256 of scales: 14 rows a stage (7 of gate with 7 of up); a
        // 14,336-wide one 8,064: 4 rows.
        Assert.Equal((14, 14, 7, 4), (g.QkvTileRows, g.OutputTileRows, g.GateUpTileRows, g.DownTileRows));
        // The work area holds the down input's 14,336 codes and 448 {d, d·Σq} pairs.
        Assert.Equal(14336 + 448 * 8, g.WorkBytes);
        Assert.Equal(6, g.Stages);
        Assert.True(g.SharedBytes <= SharedBytes);
        // 8 KV heads × 16 partitions: an attention item for 128 of the 132 blocks.
        Assert.Equal(16, g.Partitions);
    }

    [Fact]
    public void Every_tile_fits_its_stage_and_q_k_v_tiles_hold_whole_rope_pairs()
    {
        foreach (var (dim, ffn, heads, kvHeads, headDim) in new[] { (4096, 14336, 32, 8, 128), (2048, 8192, 32, 8, 64), (6144, 16384, 48, 12, 128), (1024, 3072, 8, 2, 128) })
        {
            var g = PersistentDecodeGeometry.For(dim, ffn, heads, kvHeads, headDim, 132, SharedBytes)!.Value;
            Assert.Equal(0, g.QkvTileRows % 2);
            Assert.InRange(g.QkvTileRows * (dim / 2 + dim / 16), 1, PersistentDecodeGeometry.StageBytes);
            Assert.InRange(g.OutputTileRows * (heads * headDim / 2 + heads * headDim / 16), 1, PersistentDecodeGeometry.StageBytes);
            Assert.InRange(2 * g.GateUpTileRows * (dim / 2 + dim / 16), 1, PersistentDecodeGeometry.StageBytes);
            Assert.InRange(g.DownTileRows * (ffn / 2 + ffn / 16), 1, PersistentDecodeGeometry.StageBytes);
            // One more row would not fit (the tiles are as large as a stage allows).
            Assert.True((g.DownTileRows + 1) * (ffn / 2 + ffn / 16) > PersistentDecodeGeometry.StageBytes);
            Assert.InRange(g.Stages, 2, PersistentDecodeGeometry.MaxStages);
        }
    }

    [Theory]
    [InlineData(288, 768, 6, 6, 48)]       // stories15M: widths not multiples of 1,024, head dimension 48
    [InlineData(4096, 11008, 32, 32, 128)] // Llama-2-7B: a feed-forward width of 11,008
    [InlineData(4096, 14336, 48, 16, 128)] // 3 query heads a KV head
    [InlineData(4096, 14336, 32, 8, 256)]  // head dimension 256
    [InlineData(8192, 16384, 64, 8, 128)]  // 8 query heads of 128 a KV head
    [InlineData(8192, 28672, 64, 16, 128)] // hidden 8,192: more 32-value blocks than consumer threads to normalise
    public void Shapes_the_kernel_does_not_serve_get_no_geometry(int dim, int ffn, int heads, int kvHeads, int headDim) =>
        Assert.Null(PersistentDecodeGeometry.For(dim, ffn, heads, kvHeads, headDim, 132, SharedBytes));

    [Fact]
    public void Too_little_shared_memory_for_two_stages_gets_no_geometry()
    {
        // Llama-3-8B's work area is 17,920 bytes: 2 stages need 83,456.
        Assert.Null(PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 132, 83455));
        Assert.Equal(2, PersistentDecodeGeometry.For(4096, 14336, 32, 8, 128, 132, 83456)!.Value.Stages);
    }

    [Fact]
    public void Partitions_give_each_block_at_most_one_attention_item_and_stay_within_32()
    {
        Assert.Equal(32, PersistentDecodeGeometry.For(1024, 3072, 8, 2, 128, 132, SharedBytes)!.Value.Partitions);  // 132 / 2 = 66, capped
        Assert.Equal(8, PersistentDecodeGeometry.For(1024, 2048, 16, 16, 64, 132, SharedBytes)!.Value.Partitions);  // 132 / 16
        Assert.Equal(1, PersistentDecodeGeometry.For(1024, 1024, 16, 16, 64, 8, SharedBytes)!.Value.Partitions);
    }
}
