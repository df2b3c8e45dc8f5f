using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Cuda;

/// <summary>The CUDA backend's host-side logic, which needs no GPU: launch geometry, batch metadata packing, weight packing.</summary>
public sealed class CudaHostLogicTests
{
    [Theory]
    [InlineData(16L * 8 * 64 * 2 * 16 * 4, 1000, 1000)] // Llama-3.2-1B, 16-token float32 blocks: 1 MiB a block, all 1000 fit in a GiB
    [InlineData(32L * 8 * 128 * 2 * 16 * 4, 1000, 256)] // Llama-3-8B float32: 4 MiB a block, 256 per GiB
    [InlineData(32L * 8 * 128 * 2 * 16 * 2, 1000, 512)] // Llama-3-8B f16: 2 MiB a block, 512 per GiB
    [InlineData(1L << 30, 5, 1)] // a block of exactly 1 GiB: one per allocation
    [InlineData((1L << 30) + 1, 5, 1)] // larger than the chunk size: still one per allocation
    public void Offload_store_chunks_hold_whole_slots_within_a_gibibyte(long bytesPerSlot, int slots, int expected)
    {
        var perChunk = CudaKvOffloadStore.SlotsPerChunk(bytesPerSlot, slots);
        Assert.Equal(expected, perChunk);
        Assert.True(perChunk == 1 || perChunk * bytesPerSlot <= 1L << 30);
        Assert.True(perChunk * bytesPerSlot <= int.MaxValue); // a pinned buffer's length
    }

    [Fact]
    public void Offload_store_refuses_a_block_larger_than_a_pinned_buffer() =>
        Assert.Throws<ArgumentException>(() => CudaKvOffloadStore.SlotsPerChunk((long)int.MaxValue + 1, 1));

    [Theory]
    [InlineData(288, 96, 1)]      // stories15M: 72 float4 → 3 warps
    [InlineData(896, 224, 1)]     // Qwen2.5-0.5B
    [InlineData(4096, 1024, 1)]   // Llama-3-8B: one float4 a thread (rms_norm_rows_1)
    [InlineData(8192, 1024, 4)]   // Llama-3-70B: two a thread, on the 4-item kernel
    [InlineData(16384, 1024, 4)]  // the widest row: NormItems (4) a thread
    public void Rms_norm_blocks_give_each_thread_at_most_norm_items_float4(int columns, int threads, int items)
    {
        Assert.Equal(threads, CudaLaunchGeometry.NormThreads(columns));
        Assert.Equal(items, CudaLaunchGeometry.NormItemsFor(columns));
        Assert.True(threads % 32 == 0 && threads * items * 4 >= columns);
    }

    [Theory]
    [InlineData(290)]    // not whole float4s
    [InlineData(16388)]  // more than 1024 threads × 4 float4
    public void Rms_norm_refuses_rows_it_cannot_hold(int columns)
    {
        var error = Assert.Throws<NotSupportedException>(() => CudaLaunchGeometry.NormThreads(columns));
        Assert.Contains(columns.ToString(), error.Message);
    }

    [Theory]
    [InlineData(CudaWeightLayout.Int8, 1, 4096, true)]
    [InlineData(CudaWeightLayout.Int8, 1, 14336, true)]
    [InlineData(CudaWeightLayout.Int8, 1, 4064, false)]   // K not a multiple of the 64-value stage
    [InlineData(CudaWeightLayout.Int8, 2, 4096, false)]   // Q6_K's half-block scales
    [InlineData(CudaWeightLayout.Nibble, 1, 4096, true)]   // Q4_0, Q4_K: nibbles widened at the fragment load
    [InlineData(CudaWeightLayout.Nibble, 1, 4064, false)]
    [InlineData(CudaWeightLayout.BFloat16, 1, 4096, false)]
    public void Only_quantized_weights_with_one_scale_per_block_and_whole_stages_take_the_tensor_core_gemm(CudaWeightLayout layout, int scales, int columns, bool expected)
    {
        Assert.Equal(expected, CudaLaunchGeometry.HasTensorCoreGemm(layout, scales, columns));
        // With it, a batch past 8 rows leaves the GEMV; without, only past 32.
        Assert.Equal(!expected, CudaLaunchGeometry.UseGemv(9, quantized: true, tensorCoreGemm: expected));
        Assert.True(CudaLaunchGeometry.UseGemv(8, quantized: true, tensorCoreGemm: expected));
    }

    [Theory]
    [InlineData(32, 4096, 4096, 5)]     // 64 tiles: split until 132 SMs get two blocks each
    [InlineData(64, 14336, 4096, 2)]    // 224 tiles
    [InlineData(2048, 4096, 4096, 1)]   // prefill: the tiles fill the GPU
    [InlineData(33, 100, 320, 5)]       // no more splits than K has 64-value stages
    [InlineData(9, 100, 64, 1)]
    public void Tensor_core_gemm_splits_k_only_where_its_tiles_leave_multiprocessors_idle(int rows, int outputs, int columns, int expected)
    {
        var splits = CudaLaunchGeometry.TensorCoreSplits(rows, outputs, columns, multiprocessors: 132);
        Assert.Equal(expected, splits);
        Assert.InRange(splits, 1, Math.Min(8, columns / CudaLaunchGeometry.TensorCoreGemmTile));
    }

    [Theory]
    [InlineData(256, 4096, 4096, 4)]    // Llama-3-8B q/o at batch 256: 64 tiles of 128 × 128, four splits fill 2 × 132 slots
    [InlineData(64, 1024, 4096, 8)]     // k/v at batch 64: 8 tiles of 128 × 64, at most 8 splits
    [InlineData(32, 4096, 4096, 8)]     // batch 32: 32 tiles of 128 × 32 (51 KB each, four per SM)
    [InlineData(256, 14336, 4096, 1)]   // gate/up: 224 tiles already cover the SMs
    [InlineData(2048, 4096, 4096, 1)]   // prefill: 256 tiles of 128 × 256
    [InlineData(33, 100, 288, 2)]       // K = 288 has 9 stages of 32: no split shorter than 4
    [InlineData(9, 100, 64, 1)]
    public void Half_gemm_splits_k_only_where_its_tiles_leave_multiprocessors_idle(int rows, int outputs, int columns, int expected)
    {
        var splits = CudaLaunchGeometry.HalfGemmSplits(rows, outputs, columns, multiprocessors: 132);
        Assert.Equal(expected, splits);
        var tileRows = CudaLaunchGeometry.HalfGemmRows(rows);
        var tiles = CudaLaunchGeometry.Ceiling(rows, tileRows) * CudaLaunchGeometry.Ceiling(outputs, CudaLaunchGeometry.HalfGemmWeightRows);
        var perSm = 227 * 1024 / CudaLaunchGeometry.HalfGemmSharedBytes(tileRows);
        Assert.True(splits == 1 || tiles * splits <= perSm * 132, "split blocks stay within one wave");
    }

    [Theory]
    [InlineData(2048, 4096, 4096, 128, 256, 1)]   // an 8B prefill's attention output: 16 × 16 tiles of 256, a wave and more
    [InlineData(2048, 14336, 4096, 128, 256, 1)]
    [InlineData(256, 28672, 4096, 128, 256, 1)]   // a decode batch's gate and up in one gated launch: 224 wide tiles
    [InlineData(256, 4096, 4096, 256, 128, 4)]    // a decode batch of 256: 32 tiles of 256 × 128 → 4 splits fill 132 SMs
    [InlineData(256, 14336, 4096, 256, 128, 1)]   // 112 tiles of 256 × 128: one wave without a split
    [InlineData(128, 4096, 4096, 128, 128, 8)]    // 128 rows: 32 tiles of 128 × 128, two blocks an SM → 8 splits (the most)
    [InlineData(100, 100, 320, 128, 128, 1)]      // K of 5 stages: no split shorter than 4 stages
    [InlineData(300, 4100, 2048, 256, 128, 2)]    // 33 × 2 tiles of 256 × 128 (the last ragged both ways)
    public void Warpgroup_gemm_takes_wide_tiles_where_they_fill_the_gpu_and_splits_k_otherwise(
        int rows, int outputs, int columns, int activationRows, int weightRows, int splits)
    {
        var tile = CudaLaunchGeometry.WarpgroupGemmTile(rows, outputs, multiprocessors: 132);
        Assert.Equal(new WarpgroupTile(activationRows, weightRows), tile);
        Assert.Equal(splits, CudaLaunchGeometry.WarpgroupGemmSplits(rows, outputs, columns, multiprocessors: 132, tile));
        Assert.True(tile.SharedBytes <= 227 * 1024, "a block's shared memory fits an H100's 227 KB");
        var without256Rows = CudaLaunchGeometry.WarpgroupGemmTile(rows, outputs, multiprocessors: 132, rowTiles256: false);
        Assert.Equal(activationRows == 256 ? new WarpgroupTile(128, 128) : tile, without256Rows);
    }

    [Fact]
    public void Warpgroup_tiles_have_a_warpgroup_per_64_activation_rows_a_producer_warp_and_fit_their_blocks_an_sm_in_shared_memory()
    {
        foreach (var tile in CudaLaunchGeometry.WarpgroupGemmTiles)
        {
            Assert.Equal(tile.ActivationRows / 64 * 128 + 32, tile.Threads);
            // The producer copies whole boxes: the activation rows, and the gated kernel's half of the weight rows from each matrix.
            Assert.Equal(0, tile.ActivationRows % CudaLaunchGeometry.WarpgroupGemmBoxRows);
            Assert.Equal(0, tile.WeightRows / 2 % CudaLaunchGeometry.WarpgroupGemmBoxRows);
            Assert.True(tile.BlocksPerMultiprocessor * (tile.SharedBytes + 1024) <= 228 * 1024, $"{tile}: {tile.BlocksPerMultiprocessor} blocks of {tile.SharedBytes} bytes");
            Assert.True(tile.Threads * tile.BlocksPerMultiprocessor <= 2048);
        }

        Assert.Equal(["_n128", "_n256", "_m256_n128"], CudaLaunchGeometry.WarpgroupGemmTiles.Select(t => t.KernelSuffix));
    }

    [Theory]
    [InlineData(0x1000ul, 4096L, 32)]  // box rows of 64 bytes, not the 128-byte swizzle the kernel's layout needs
    [InlineData(0x1008ul, 4096L, 64)]  // a start that is not 16-byte aligned
    [InlineData(0x1000ul, 4100L, 64)]  // rows of 8,200 bytes: not a multiple of 16
    public void Half_matrix_tensor_maps_reject_what_the_bulk_copies_cannot_address(ulong address, long columns, int boxColumns)
    {
        // Thrown before the driver is called: no GPU needed.
        var error = Assert.Throws<ArgumentException>(() =>
            CudaTensorMap.HalfMatrix(new DevicePointer(address), bf16: true, rows: 256, columns, boxRows: 64, boxColumns));
        Assert.Contains($"256 × {columns}", error.Message);
    }

    [Theory]
    [InlineData(64, 4096, false)]   // gemm_half_tc's 64-row decode tile
    [InlineData(65, 4096, true)]
    [InlineData(2048, 4096, true)]
    [InlineData(2048, 288, false)]  // K not a multiple of the 64-value stages
    public void Warpgroup_gemm_takes_more_than_64_rows_and_whole_stages_of_k(int rows, int columns, bool expected) =>
        Assert.Equal(expected, CudaLaunchGeometry.UseWarpgroupGemm(rows, columns));

    [Theory]
    [InlineData(9, 32)]
    [InlineData(32, 32)]
    [InlineData(33, 64)]
    [InlineData(64, 64)]
    [InlineData(65, 128)]
    [InlineData(1023, 128)]
    [InlineData(1024, 256)]
    [InlineData(8192, 256)]
    public void Half_gemm_tiles_grow_with_the_batch_and_fit_shared_memory(int rows, int tileRows)
    {
        Assert.Equal(tileRows, CudaLaunchGeometry.HalfGemmRows(rows));
        Assert.Contains(tileRows, CudaLaunchGeometry.HalfGemmTileRows);
        Assert.InRange(CudaLaunchGeometry.HalfGemmSharedBytes(tileRows), 48 * 1024, 227 * 1024);
    }

    [Theory]
    [InlineData(1, true, true)]
    [InlineData(8, true, true)]
    [InlineData(9, true, false)]
    [InlineData(32, true, false)]
    [InlineData(33, false, false)]
    [InlineData(512, false, false)]
    public void MatMulPathAndGridCoverEveryOutput(int rows, bool quantizedGemv, bool floatGemv)
    {
        Assert.Equal(quantizedGemv, CudaLaunchGeometry.UseGemv(rows, quantized: true));
        Assert.Equal(floatGemv, CudaLaunchGeometry.UseGemv(rows, quantized: false));
        if (quantizedGemv)
        {
            foreach (var weightRows in new[] { 4100, 128_256 })
            {
                var shape = CudaLaunchGeometry.Gemv(rows, CudaWeightLayout.Int8);
                Assert.InRange(rows, 1, shape.MaxRows);
                Assert.Contains(shape.MaxRows, CudaLaunchGeometry.GemvVariants(isFloat: false));
                Assert.Equal(floatGemv, CudaLaunchGeometry.GemvVariants(isFloat: true).Contains(shape.MaxRows));
                var blocks = CudaLaunchGeometry.GemvGrid(weightRows, shape);
                var perBlock = shape.SplitK ? shape.RowsPerWarp : CudaLaunchGeometry.GemvWarps * shape.RowsPerWarp;
                Assert.True(blocks * perBlock >= weightRows && (blocks - 1) * perBlock < weightRows);
            }
        }
        else
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => CudaLaunchGeometry.Gemv(rows, CudaWeightLayout.Int8));
            var (x, y) = CudaLaunchGeometry.GemmGrid(rows, 4100);
            Assert.True(x * CudaLaunchGeometry.GemmTile >= 4100 && (x - 1) * CudaLaunchGeometry.GemmTile < 4100);
            Assert.True(y * CudaLaunchGeometry.GemmTile >= rows && (y - 1) * CudaLaunchGeometry.GemmTile < rows);
        }
    }

    [Theory]
    [InlineData(CudaWeightLayout.BFloat16, 4)]
    [InlineData(CudaWeightLayout.Float16, 4)]
    [InlineData(CudaWeightLayout.Float32, 4)]
    [InlineData(CudaWeightLayout.Int8, 4)]
    [InlineData(CudaWeightLayout.Nibble, 8)]  // a 4096-wide nibble row is one 32-value block for each of 128 threads
    public void OneRowGemvSharesRowsAmongTheBlocksWarps(CudaWeightLayout layout, int sharedRows)
    {
        var shape = CudaLaunchGeometry.Gemv(1, layout);
        Assert.True(shape.SplitK);
        Assert.Equal(sharedRows, shape.RowsPerBlock);
        Assert.False(CudaLaunchGeometry.Gemv(1, layout, splitK: false).SplitK);
        Assert.Equal(CudaLaunchGeometry.GemvWarps * (layout == CudaWeightLayout.Nibble ? 2 : 4), CudaLaunchGeometry.Gemv(1, layout, splitK: false).RowsPerBlock);
        Assert.True(CudaLaunchGeometry.Gemv(1, layout, splitK: true).SplitK);
        Assert.False(CudaLaunchGeometry.Gemv(8, layout).SplitK);
    }

    [Theory]
    [InlineData(CudaWeightLayout.BFloat16, 128256, false)]  // Llama-3-8B's logits: warps keep whole rows
    [InlineData(CudaWeightLayout.Float32, 16384, false)]
    [InlineData(CudaWeightLayout.Float16, 6144, true)]      // q/k/v: split
    [InlineData(CudaWeightLayout.BFloat16, 4096, true)]     // attention output, down
    [InlineData(CudaWeightLayout.Int8, 128256, true)]       // quantized weights split at every width
    [InlineData(CudaWeightLayout.Nibble, 28672, true)]
    public void OneRowGemvsOfWideWeightsKeepWholeRowsInAWarp(CudaWeightLayout layout, int weightRows, bool split)
    {
        Assert.Equal(split, CudaLaunchGeometry.Gemv(1, layout, weightRows: weightRows).SplitK);
        Assert.True(CudaLaunchGeometry.Gemv(1, layout, splitK: true, weightRows: weightRows).SplitK);
        Assert.False(CudaLaunchGeometry.Gemv(8, layout, weightRows: weightRows).SplitK);
    }

    [Theory]
    [InlineData(512, 132, 8, 4)]    // Llama-3.2-1B down or attention output, 4 rows a block: 3.9 blocks an SM, so 4
    [InlineData(100, 132, 6, 1)]    // a narrow weight: one block on each of 100 SMs
    [InlineData(768, 132, 8, null)] // Llama-3.2-1B q/k/v: 0.73 of a wave, left to the registers
    [InlineData(768, 132, 7, null)] // Llama-3-8B Q4_0 q/k/v (8 nibble rows a block): 0.83 of a wave
    [InlineData(1024, 132, 8, null)]
    public void ASplitGemvOfAtMostHalfAWaveIsHeldToTheFewestBlocksAnSmThatTakeItAtOnce(int grid, int multiprocessors, int natural, int? blocks)
    {
        Assert.Equal(blocks, CudaLaunchGeometry.SplitGemvBlocksPerMultiprocessor(grid, multiprocessors, natural));
        if (blocks is { } held)
        {
            Assert.True(held * multiprocessors >= grid && (held - 1) * multiprocessors < grid && held < natural);
        }
    }

    [Theory]
    [InlineData(3584, CudaWeightLayout.Int8, 4096, 132, 4, 528)]     // Llama-3-8B Q8_0 gate/up: one wave of 4 an SM
    [InlineData(1024, CudaWeightLayout.Int8, 14336, 132, 4, 528)]    // down: several passes a group
    [InlineData(528, CudaWeightLayout.Int8, 4096, 132, 4, null)]     // no more than a wave: the plain split
    [InlineData(4096, CudaWeightLayout.Int8, 2048, 132, 4, null)]    // Llama-3.2-1B: half the threads' second unit empty
    [InlineData(3584, CudaWeightLayout.Nibble, 4096, 132, 4, 528)]   // Llama-3-8B Q4_0 gate/up (8 rows a split block)
    [InlineData(3584, CudaWeightLayout.Nibble, 2048, 132, 4, null)]  // nibble rows of less than a pass
    [InlineData(3584, CudaWeightLayout.BFloat16, 4096, 132, 4, null)]
    [InlineData(3584, CudaWeightLayout.Int8, 4096, 132, 0, null)]    // a kernel that cannot be resident
    public void TheStridedSplitGemvRunsOneWaveOfQuantizedRowsOfAtLeastOneFullPassOverAWave(int grid, CudaWeightLayout layout, int columns, int multiprocessors,
        int natural, int? expected) =>
        Assert.Equal(expected, CudaLaunchGeometry.StridedGemvGrid(grid, layout, columns, multiprocessors, natural));

    [Theory]
    [InlineData(233_472, 1024, 64)]   // H100 and H200: 228 KB an SM, 1 KB reserved a block; the int8/float split's 64 B
    [InlineData(233_472, 1024, 128)]  // the nibble split's 128 B
    [InlineData(167_936, 1024, 128)]  // A100: 164 KB an SM
    public void SharedMemoryHoldsAKernelToTheBlocksAsked(int sharedPerMultiprocessor, int reservedPerBlock, int staticBytes)
    {
        for (var blocks = 2; blocks <= 16; blocks++)
        {
            var dynamic = CudaLaunchGeometry.SharedBytesForBlocksPerMultiprocessor(blocks, sharedPerMultiprocessor, reservedPerBlock, staticBytes);
            Assert.NotNull(dynamic);
            var perBlock = (dynamic!.Value + staticBytes + reservedPerBlock + CudaLaunchGeometry.SharedAllocationUnit - 1)
                / CudaLaunchGeometry.SharedAllocationUnit * CudaLaunchGeometry.SharedAllocationUnit;
            Assert.Equal(blocks, sharedPerMultiprocessor / perBlock);
        }

        // A kernel whose own static bytes already leave fewer blocks than asked cannot be held to that number this way.
        Assert.Null(CudaLaunchGeometry.SharedBytesForBlocksPerMultiprocessor(8, sharedPerMultiprocessor, reservedPerBlock, sharedPerMultiprocessor / 4));
    }

    [Theory]
    [InlineData(288, 96)]
    [InlineData(4096, 1024)]
    [InlineData(16384, 1024)]  // wider rows loop over the block
    public void EmbedRowsTakeOneThreadPerFourValuesInWholeWarps(int columns, int threads)
    {
        Assert.Equal(threads, CudaLaunchGeometry.EmbedThreads(columns));
        Assert.Equal(0, threads % 32);
    }

    [Fact]
    public void GemvGroupsShareALaunchOnlyWithOneFamilyAndWholeWarpsOfRowsBeforeTheLast()
    {
        Assert.True(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_int8", 4096), ("gemv_int8", 1024), ("gemv_int8", 1023)], 4));
        Assert.True(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_nibble", 14336), ("gemv_nibble", 14336)], 2));
        Assert.False(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_nibble", 4096), ("gemv_int8_halves", 1024)], 2)); // Q4_K + Q6_K
        Assert.False(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_int8", 102), ("gemv_int8", 36)], 4));
        Assert.True(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_int8", 102), ("gemv_int8", 36)], 2));
        Assert.False(CudaLaunchGeometry.CanShareGemvLaunch([("gemv_int8", 64), ("gemv_int8", 64), ("gemv_int8", 64), ("gemv_int8", 64)], 4));
        Assert.False(CudaLaunchGeometry.CanShareGemvLaunch([], 4));
    }

    [Theory]
    [InlineData(1, 8, 4096, 132)]
    [InlineData(1, 8, 2048, 132)]
    [InlineData(1, 8, 8192, 132)]
    [InlineData(1, 8, 100, 132)]
    [InlineData(1, 8, 129, 132)]
    [InlineData(32, 8, 1024, 132)]
    [InlineData(32, 8, 2048, 132)]
    [InlineData(512, 8, 512, 132)]
    [InlineData(1, 2, 16384, 132)]
    [InlineData(3, 8, 129, 80)]
    [InlineData(3, 8, 301, 132)]
    public void AttentionSplitCoversTheContextInTilesAndFillsTheDevice(int tokens, int kvHeads, int context, int sms)
    {
        var (partition, splits) = CudaLaunchGeometry.AttentionSplit(tokens, kvHeads, context, sms);
        Assert.Equal(0, partition % CudaLaunchGeometry.AttentionTile);
        Assert.True(partition * splits >= context && partition * (splits - 1) < context, "the partitions must cover the context exactly once");
        var units = (long)tokens * kvHeads;
        var target = AttentionSplitPolicy.Default.BlocksPerMultiprocessor * sms;
        if (context <= AttentionSplitPolicy.Default.UnsplitContext || units >= target)
        {
            Assert.Equal(1, splits); // short contexts and grids that fill the device alone: no reduce pass
            return;
        }

        // Split: the splits that bring the blocks to the target (fewer where the context has fewer tiles), each partition the
        // shortest whole number of tiles that needs no more of them; rounding to tiles keeps at least half the target.
        var wanted = Math.Min(CudaLaunchGeometry.Ceiling(context, CudaLaunchGeometry.AttentionTile), CudaLaunchGeometry.Ceiling(target, units));
        Assert.True(splits <= wanted, $"{splits} splits, {wanted} wanted");
        var minimum = AttentionSplitPolicy.Default.MinPartition;
        Assert.True(partition >= minimum, $"partition {partition} below the minimum {minimum}");
        var shorter = partition - CudaLaunchGeometry.AttentionTile;
        Assert.True(partition == minimum || CudaLaunchGeometry.Ceiling(context, shorter) > wanted, "a partition one tile shorter would need more splits than wanted");
        Assert.True(2 * units * splits > target || partition == minimum, $"{units * splits} blocks of {partition}");
    }

    [Theory]
    [InlineData(1, 8, 64, 132, 64, 1)]      // batch 1, a context of one minimum partition: one block per KV head
    [InlineData(1, 8, 128, 132, 64, 2)]     // splitting pays even here: two partitions and the reduce pass
    [InlineData(1, 8, 2048, 132, 64, 32)]   // 256 blocks of the minimum partition
    [InlineData(1, 8, 8192, 132, 128, 64)]  // 512 blocks of four batches per warp
    [InlineData(32, 8, 2048, 132, 704, 3)]  // 768 blocks
    [InlineData(66, 8, 2048, 132, 2048, 1)] // 528 blocks without a reduce pass
    public void AttentionSplitOfTheLlama3Shapes(int tokens, int kvHeads, int context, int sms, int partition, int splits) =>
        Assert.Equal((partition, splits), CudaLaunchGeometry.AttentionSplit(tokens, kvHeads, context, sms));

    [Theory]
    [InlineData(128, true)]   // Qwen3: 64 pairs, two heads a block
    [InlineData(64, true)]
    [InlineData(256, true)]   // one head a block
    [InlineData(48, false)]   // 24 pairs: heads would straddle blocks, so the norms run first
    [InlineData(512, false)]
    public void RopeFusesHeadNormsWhereBlocksHoldWholeHeads(int headDim, bool fused) =>
        Assert.Equal(fused, CudaLaunchGeometry.RopeFusesHeadNorms(headDim));

    [Fact]
    public void AttentionSharedMemoryFitsTheOptInLimitForEveryAllowedGroup()
    {
        // The kernels opt in to AttentionMaxSharedBytes at load; 99 KB is the per-block limit of sm_86/89, the smallest of
        // the devices the sm_80 PTX runs on (A100 163 KB, H100 227 KB). An f16 tile of a 128-wide head is 16 KB of K and V.
        Assert.True(CudaLaunchGeometry.AttentionMaxSharedBytes <= 99 * 1024);
        // Qwen3-0.6B over f16: 2 queries of 128 floats, p scratch 4 × 64 floats, statistics 4 × 8 float2, 4 stages.
        Assert.Equal((2 * 128 + 4 * 64 + 4 * 8 * 2) * 4 + 4 * 16 * 1024, CudaLaunchGeometry.AttentionSharedBytes(2, 128, 2));
        foreach (var (group, headDim) in new[] { (1, 48), (4, 64), (7, 64), (2, 128), (8, 128), (8, 256), (6, 16) })
        {
            foreach (var elementBytes in new[] { 2, 4 })
            {
                Assert.True(CudaLaunchGeometry.AttentionSupports(group, headDim, elementBytes));
                Assert.InRange(CudaLaunchGeometry.AttentionSharedBytes(group, headDim, elementBytes), 1, CudaLaunchGeometry.AttentionMaxSharedBytes);
            }
        }

        foreach (var (group, headDim) in new[] { (9, 128), (16, 64), (4, 512), (4, 66), (0, 64) })
        {
            Assert.False(CudaLaunchGeometry.AttentionSupports(group, headDim, 4));
        }

        // The tensor-core decode kernels: whole k-steps of 16 up to 128 (others fall back to attention_partition_f16 / _fp8),
        // and two (f16) or three (fp8) blocks per H100 multiprocessor (227 KB) at the largest.
        Assert.True(CudaLaunchGeometry.DecodeTensorCoreSupports(8, 128));
        Assert.True(CudaLaunchGeometry.DecodeTensorCoreSupports(1, 48));
        Assert.False(CudaLaunchGeometry.DecodeTensorCoreSupports(4, 256));
        Assert.False(CudaLaunchGeometry.DecodeTensorCoreSupports(4, 40));
        Assert.False(CudaLaunchGeometry.DecodeTensorCoreSupports(9, 128));
        Assert.InRange(2 * CudaLaunchGeometry.DecodeTensorCoreSharedBytes(128, 2), 1, 227 * 1024);
        Assert.InRange(3 * CudaLaunchGeometry.DecodeTensorCoreSharedBytes(128, 1), 1, 227 * 1024);

        // Rows of an f16 cache move in 16-byte copies: a head dimension of 4 mod 8 is served over float32 only.
        Assert.True(CudaLaunchGeometry.AttentionSupports(4, 68, 4));
        Assert.False(CudaLaunchGeometry.AttentionSupports(4, 68, 2));
    }

    /// <summary>
    /// A mixed batch as the serving scheduler builds it: a 130-token chunk over a cached prefix, a decode token, a run of
    /// exactly <see cref="CudaLaunchGeometry.PrefillMinRun"/> tokens, one a token shorter, a sequence whose positions jump
    /// (two runs), and a run broken because the next token belongs to another sequence.
    /// </summary>
    private static ForwardBatch MixedBatch()
    {
        var batch = new ForwardBatch(512, 8, 16);
        for (var s = 0; s < 7; s++)
        {
            batch.AddSequence([s]);
        }

        void Run(int sequence, int from, int count)
        {
            for (var p = from; p < from + count; p++)
            {
                batch.AddToken(1, p, sequence, p, false);
            }
        }

        Run(0, 100, 130);  // tokens 0…129: tiles 128, 2
        Run(1, 50, 1);     // token 130: decode
        Run(2, 0, 16);     // tokens 131…146: one tile of 16
        Run(3, 0, 15);     // tokens 147…161: too short
        Run(4, 0, 10);     // tokens 162…171: too short
        Run(4, 20, 20);    // tokens 172…191: a new run (positions jump from 9 to 20), one tile
        Run(5, 7, 12);     // tokens 192…203, then sequence 6 continues the positions: still two runs, both short
        Run(6, 19, 12);    // tokens 204…215
        return batch;
    }

    [Fact]
    public void Query_tiles_cut_runs_of_one_sequence_at_consecutive_positions_and_leave_short_runs_to_the_decode_kernel()
    {
        var batch = MixedBatch();
        var (tiles, rest, restContext) = CudaLaunchGeometry.CountQueryTiles(batch.Positions, batch.SequenceIndices);
        Assert.Equal(4, tiles);
        var tileList = new int[2 * tiles];
        var restList = new int[rest];
        CudaLaunchGeometry.BuildQueryTiles(batch.Positions, batch.SequenceIndices, tileList, restList);
        Assert.Equal([0, 128, 128, 2, 131, 16, 172, 20], tileList);
        int[] expectedRest = [130, .. Enumerable.Range(147, 15), .. Enumerable.Range(162, 10), .. Enumerable.Range(192, 24)];
        Assert.Equal(expectedRest, restList);
        Assert.Equal(51, restContext); // the decode token at position 50
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2048, 1)]
    [InlineData(300, 3)]
    [InlineData(97, 5)]
    public void Query_tiles_and_the_rest_cover_every_token_once_with_tiles_of_one_sequence_at_consecutive_positions(int tokens, int seed)
    {
        // Random runs: chunks of random length of random sequences, positions continuing or jumping.
        var random = new Random(seed);
        var batch = new ForwardBatch(tokens, 8, 1);
        var next = new int[8];
        for (var s = 0; s < 8; s++)
        {
            batch.AddSequence([0]);
        }

        while (batch.TokenCount < tokens)
        {
            var s = random.Next(8);
            next[s] += random.Next(3) == 0 ? random.Next(1, 50) : 0;
            for (var n = Math.Min(tokens - batch.TokenCount, random.Next(1, 150)); n > 0; n--)
            {
                batch.AddToken(0, next[s]++, s, 0, false);
            }
        }

        var (tiles, rest, restContext) = CudaLaunchGeometry.CountQueryTiles(batch.Positions, batch.SequenceIndices);
        var tileList = new int[2 * tiles];
        var restList = new int[rest];
        CudaLaunchGeometry.BuildQueryTiles(batch.Positions, batch.SequenceIndices, tileList, restList);
        var seen = new int[tokens];
        for (var i = 0; i < tiles; i++)
        {
            var (first, count) = (tileList[2 * i], tileList[2 * i + 1]);
            Assert.InRange(count, 1, CudaLaunchGeometry.PrefillTile);
            for (var t = first; t < first + count; t++)
            {
                seen[t]++;
                Assert.Equal(batch.SequenceIndices[first], batch.SequenceIndices[t]);
                Assert.Equal(batch.Positions[first] + (t - first), batch.Positions[t]);
            }
        }

        foreach (var t in restList)
        {
            seen[t]++;
        }

        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.Equal(rest == 0 ? 0 : restList.Max(t => batch.Positions[t]) + 1, restContext);
        Assert.True(restList.SequenceEqual(restList.Order()), "the rest keeps batch order");
    }

    [Fact]
    public void Prefill_kernel_serves_head_dimensions_that_are_multiples_of_16_up_to_128_within_the_default_shared_memory()
    {
        foreach (var headDim in new[] { 16, 48, 64, 80, 96, 128 })
        {
            Assert.True(CudaLaunchGeometry.PrefillSupports(headDim));
            Assert.True(CudaLaunchGeometry.PrefillSharedBytes(headDim) <= 48 * 1024);
            // The f16 and fp8 kernels' three stages take more than the default 48 KB; each kernel is raised to its largest
            // at load.
            foreach (var elementBytes in new[] { 2, 1 })
            {
                Assert.InRange(CudaLaunchGeometry.PrefillCpAsyncSharedBytes(headDim, elementBytes), 1,
                    CudaLaunchGeometry.PrefillCpAsyncSharedBytes(CudaLaunchGeometry.PrefillMaxHeadDim, elementBytes));
            }
        }

        Assert.True(CudaLaunchGeometry.PrefillCpAsyncSharedBytes(CudaLaunchGeometry.PrefillMaxHeadDim, 2) <= 227 * 1024);
        Assert.True(CudaLaunchGeometry.PrefillCpAsyncSharedBytes(CudaLaunchGeometry.PrefillMaxHeadDim, 1) <= 227 * 1024);

        foreach (var headDim in new[] { 0, 8, 72, 100, 144, 256 })
        {
            Assert.False(CudaLaunchGeometry.PrefillSupports(headDim));
        }
    }

    [Fact]
    public void BatchMetadataPacksQueryTilesAndTheRestOfAMixedBatch()
    {
        var batch = MixedBatch();
        var layout = BatchMetadata.For(batch);
        var packed = new int[layout.Length];
        layout.Pack(batch, packed);
        Assert.Equal(layout.BlockTables + batch.SequenceCount * batch.MaxBlocksPerSequence, layout.QueryTiles);
        Assert.Equal(4, layout.QueryTileCount);
        Assert.Equal([0, 128, 128, 2, 131, 16, 172, 20], packed[layout.QueryTiles..(layout.QueryTiles + 8)]);
        Assert.Equal(layout.QueryTiles + 8, layout.RestTokens);
        Assert.Equal(50, layout.RestTokenCount);
        Assert.Equal(130, packed[layout.RestTokens]);
        Assert.Equal(215, packed[layout.Length - 1]);
        Assert.Equal(51, layout.RestMaxContext);
        // The block tables are where they were: the lists only extend the buffer.
        Assert.Equal([0, 1], [packed[layout.BlockTables], packed[layout.BlockTables + 16]]);
    }

    [Fact]
    public void BatchMetadataOfADecodeBatchHasNoTileOrTokenList()
    {
        var batch = new ForwardBatch(4, 4, 4);
        for (var s = 0; s < 4; s++)
        {
            batch.AddSequence([s]);
            batch.AddToken(1, 10 * s + 3, s, s, true);
        }

        var layout = BatchMetadata.For(batch);
        Assert.Equal((0, 0), (layout.QueryTileCount, layout.RestTokenCount));
        Assert.Equal(batch.MaxContextLength, layout.RestMaxContext);
        Assert.Equal(layout.BlockTables + 4 * 4, layout.Length);
        Assert.True(layout.DecodeOnly);
    }

    [Fact]
    public void BatchMetadataIsDecodeOnlyOnlyWhereEveryTokenIsItsSequencesOnlyOne()
    {
        // Three sequences, three tokens, but the second sequence has two of them (and the third none): the second token's
        // key and value are written in the same step, so its attention may not read the cache before its wait.
        var batch = new ForwardBatch(4, 3, 4);
        batch.AddSequence([0]);
        batch.AddSequence([1]);
        batch.AddSequence([2]);
        batch.AddToken(1, 5, 0, 5, true);
        batch.AddToken(1, 7, 1, 23, true);
        batch.AddToken(1, 8, 1, 24, true);
        Assert.False(BatchMetadata.For(batch).DecodeOnly);
        Assert.False(BatchMetadata.For(MixedBatch()).DecodeOnly);
    }

    [Fact]
    public void BatchMetadataPacksEveryArrayAtItsOffset()
    {
        var batch = new ForwardBatch(8, 3, 4);
        batch.AddSequence([7, 2]);
        batch.AddSequence([5, 1, 9, 3]);
        batch.AddToken(11, 0, 0, 112, false);
        batch.AddToken(12, 1, 0, 113, true);
        batch.AddToken(13, 40, 1, 150, true);
        var layout = BatchMetadata.For(batch);
        var packed = new int[layout.Length];
        layout.Pack(batch, packed);
        Assert.Equal([11, 12, 13], packed[layout.TokenIds..(layout.TokenIds + 3)]);
        Assert.Equal([0, 1, 40], packed[layout.Positions..(layout.Positions + 3)]);
        Assert.Equal([0, 0, 1], packed[layout.Sequences..(layout.Sequences + 3)]);
        Assert.Equal([112, 113, 150], packed[layout.Slots..(layout.Slots + 3)]);
        Assert.Equal([1, 2], packed[layout.LogitIndices..(layout.LogitIndices + 2)]);
        // Block tables keep the batch's row stride (MaxBlocksPerSequence), as the attention kernel indexes them.
        Assert.Equal([7, 2], packed[layout.BlockTables..(layout.BlockTables + 2)]);
        Assert.Equal([5, 1, 9, 3], packed[(layout.BlockTables + 4)..(layout.BlockTables + 8)]);
        Assert.Equal(layout.BlockTables + 2 * 4, layout.Length);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void PackedWeightsDecodeToTheGgmlValues(GgmlType type)
    {
        const int rows = 3;
        var columns = GgmlTypeInfo.BlockSize(type) == 256 ? 512 : 96;
        var tensor = new PinnedTensor("w", type, rows, columns, GgmlReference.RandomTensor(type, rows, columns, new Random((int)type)));
        var expected = tensor.Dequantized;
        var packed = CudaWeightPacker.Pack(tensor.View);
        for (var r = 0; r < rows; r++)
        {
            for (var i = 0; i < columns; i++)
            {
                var want = expected[r * columns + i];
                Assert.True(Math.Abs(packed.Value(r, i) - want) <= 1e-6 * Math.Max(1, Math.Abs(want)), $"{type} [{r}, {i}]: {packed.Value(r, i)} ≠ {want}");
            }
        }

        var layout = packed.Layout;
        Assert.Equal(type switch
        {
            GgmlType.F32 => CudaWeightLayout.Float32,
            GgmlType.F16 => CudaWeightLayout.Float16,
            GgmlType.BF16 => CudaWeightLayout.BFloat16,
            GgmlType.Q4_0 or GgmlType.Q4_K => CudaWeightLayout.Nibble,
            _ => CudaWeightLayout.Int8,
        }, layout);
    }

    public static TheoryData<GgmlType> Types() => new(GgmlReference.AllTypes);

    [Theory]
    [MemberData(nameof(Types))]
    public void Block_scales_go_to_the_device_as_f16_exactly_where_a_block_has_one_f16_scale(GgmlType type)
    {
        const int rows = 3;
        var columns = GgmlTypeInfo.BlockSize(type) == 256 ? 512 : 96;
        var tensor = new PinnedTensor("w", type, rows, columns, GgmlReference.RandomTensor(type, rows, columns, new Random((int)type + 1)));
        var packed = CudaWeightPacker.Pack(tensor.View);
        if (packed.Scales is null)
        {
            Assert.Contains(type, new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 });
            return;
        }

        var half = CudaWeight.HasHalfScales(packed.ScalesPerBlock, packed.Mins is not null);
        Assert.Equal(type is GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.Q4_0, half);
        var bytes = CudaWeight.DeviceScales(packed.Name, packed.Scales, half);
        Assert.Equal(packed.Scales.Length * (half ? 2 : 4), bytes.Length);
        for (var i = 0; i < packed.Scales.Length; i++)
        {
            var stored = half ? (float)BitConverter.ToHalf(bytes, 2 * i) : BitConverter.ToSingle(bytes, 4 * i);
            Assert.Equal(packed.Scales[i], stored); // exact: the f16 copy is the file's own d
        }
    }

    [Fact]
    public void A_scale_that_is_not_an_f16_value_is_refused_by_weight_name()
    {
        var error = Assert.Throws<InvalidOperationException>(() => CudaWeight.DeviceScales("blk.3.ffn_down.weight", [0.5f, 1f / 3f], half: true));
        Assert.Contains("blk.3.ffn_down.weight", error.Message);
        Assert.Contains("block scale 1", error.Message);
    }

    [Fact]
    public void VectorsAreWidenedToFloat32AndBadShapesAreRefusedByName()
    {
        var half = new byte[64];
        for (var i = 0; i < 32; i++)
        {
            BitConverter.TryWriteBytes(half.AsSpan(2 * i), (Half)(i * 0.5));
        }

        var packed = CudaWeightPacker.Pack(new PinnedTensor("norm", GgmlType.F16, 1, 32, half).View);
        Assert.Equal(CudaWeightLayout.Float32, packed.Layout);
        Assert.Equal(7.5f, packed.Value(0, 15));

        var floats = new PinnedTensor("blk.0.attn_q.weight", GgmlType.F32, 2, 40, new byte[40 * 4 * 2]);
        var error = Assert.Throws<InvalidDataException>(() => CudaWeightPacker.Pack(floats.View));
        Assert.Contains("blk.0.attn_q.weight", error.Message);
        Assert.Contains("multiple of 32", error.Message);
    }

    [Fact]
    public void CudaResultErrorsNameTheCallAndTheResult()
    {
        var error = new CudaException("cuMemAlloc", CudaResult.OutOfMemory, "1,024 bytes");
        Assert.Contains("cuMemAlloc failed", error.Message);
        Assert.Contains("OUT_OF_MEMORY", error.Message.Replace("OutOfMemory", "OUT_OF_MEMORY"));
        Assert.Equal(CudaResult.OutOfMemory, error.Result);
    }

    [Fact]
    public void DeviceAutoFallsBackToTheCpuWithTheReasonWhenThereIsNoGpu()
    {
        if (CudaContext.IsAvailable(out var why))
        {
            using var gpu = BackendSelector.Create("auto", 1, out var reason);
            Assert.IsType<CudaBackend>(gpu);
            Assert.Contains("CUDA available", reason);
            return;
        }

        using var backend = BackendSelector.Create("auto", 1, out var fallback);
        Assert.IsType<CpuBackend>(backend);
        Assert.Contains(why, fallback);
        var error = Assert.Throws<InvalidOperationException>(() => BackendSelector.Create("cuda", 1, out _));
        Assert.Contains("--device cuda", error.Message);
    }

    [Fact]
    public void Sampling_rows_and_penalties_have_the_kernels_struct_layout()
    {
        // sampling.cu: SamplingRow is nine 4-byte fields, 4 bytes of padding, then the double uniform (48 bytes);
        // TokenPenalty is two ints.
        var row = new SamplingRow(0.7f, 40, 0.9f, 0.05f, 1.2f, 0.3f, 0.4f, 17, 5, 0.625);
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new[] { row }.AsSpan());
        Assert.Equal(48, bytes.Length);
        Assert.Equal(0.7f, BitConverter.ToSingle(bytes[0..]));
        Assert.Equal(40, BitConverter.ToInt32(bytes[4..]));
        Assert.Equal(0.9f, BitConverter.ToSingle(bytes[8..]));
        Assert.Equal(0.05f, BitConverter.ToSingle(bytes[12..]));
        Assert.Equal(1.2f, BitConverter.ToSingle(bytes[16..]));
        Assert.Equal(0.3f, BitConverter.ToSingle(bytes[20..]));
        Assert.Equal(0.4f, BitConverter.ToSingle(bytes[24..]));
        Assert.Equal(17, BitConverter.ToInt32(bytes[28..]));
        Assert.Equal(5, BitConverter.ToInt32(bytes[32..]));
        Assert.Equal(0.625, BitConverter.ToDouble(bytes[40..]));
        var penalty = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new[] { new TokenPenalty(9, 3) }.AsSpan());
        Assert.Equal([9, 0, 0, 0, 3, 0, 0, 0], penalty.ToArray());
    }
}
