namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Up to three matmuls reading the same input (q, k and v; gate and up) as one pool operation: the items are chunks of 16
/// output rows (whole cache lines of each output row) of each weight in turn. Chunks start at multiples of 16, so a row is
/// computed by the same kernel path (four-row groups and all) however the chunks are spread over threads: results do not
/// depend on the thread count or on which thread ran what.
/// </summary>
internal sealed unsafe class MatMulJob : IParallelWork
{
    private const int RowsPerItem = 16;

    private readonly CpuWeight?[] _weights = new CpuWeight?[3];
    private readonly CpuTensor?[] _outputs = new CpuTensor?[3];
    private readonly int[] _firstItem = new int[4];

    public CpuTensor Input = null!;
    public int Tokens;
    public SimdLevel Level;

    /// <summary>When set, output = SiLU(first output) · second output is written here for the rows each chunk computed
    /// (the SwiGLU feed-forward fused into the gate/up matmul: both weights must have the same rows).</summary>
    public CpuTensor? SiluMulOutput;

    public int Items => _firstItem[3];

    public void Set(CpuWeight w0, CpuTensor o0, CpuWeight? w1 = null, CpuTensor? o1 = null, CpuWeight? w2 = null, CpuTensor? o2 = null)
    {
        (_weights[0], _weights[1], _weights[2]) = (w0, w1, w2);
        (_outputs[0], _outputs[1], _outputs[2]) = (o0, o1, o2);
        _firstItem[0] = 0;
        for (var i = 0; i < 3; i++)
        {
            _firstItem[i + 1] = _firstItem[i] + (_weights[i] is { } w ? (w.Rows + RowsPerItem - 1) / RowsPerItem : 0);
        }
    }

    public void Execute(int start, int end, int worker)
    {
        if (SiluMulOutput is not null)
        {
            // Gate and up share the row space: item i is rows [16i, 16i + 16) of both, then their SwiGLU.
            var rowStart = start * RowsPerItem;
            var rowEnd = Math.Min(end * RowsPerItem, _weights[0]!.Rows);
            Rows(_weights[0]!, _outputs[0]!, rowStart, rowEnd);
            Rows(_weights[1]!, _outputs[1]!, rowStart, rowEnd);
            var (gate, up, output) = (_outputs[0]!, _outputs[1]!, SiluMulOutput);
            for (var t = 0; t < Tokens; t++)
            {
                VectorMath.SiluMul(gate.Row(t) + rowStart, up.Row(t) + rowStart, output.Row(t) + rowStart, rowEnd - rowStart);
            }

            return;
        }

        for (var i = 0; i < 3 && start < end; i++)
        {
            if (start >= _firstItem[i + 1])
            {
                continue;
            }

            var weight = _weights[i]!;
            var last = Math.Min(end, _firstItem[i + 1]);
            Rows(weight, _outputs[i]!, (start - _firstItem[i]) * RowsPerItem, Math.Min((last - _firstItem[i]) * RowsPerItem, weight.Rows));
            start = last;
        }
    }

    private void Rows(CpuWeight weight, CpuTensor output, int start, int end)
    {
        if (weight.IsQuantized)
        {
            if (Level == SimdLevel.Portable)
            {
                PortableKernels.QuantRows(weight, Input.Quantized, Tokens, output.Data, start, end);
            }
            else
            {
                QuantMatMulKernel.Run(weight, Input.Quantized, Tokens, output.Data, start, end);
            }
        }
        else if (Level == SimdLevel.Portable)
        {
            PortableKernels.FloatRows(weight, Input.Data, Input.Columns, Tokens, output.Data, start, end);
        }
        else
        {
            FloatMatMulKernel.Run(weight, Input.Data, Input.Columns, Tokens, output.Data, start, end, Level == SimdLevel.Avx512);
        }
    }
}

/// <summary>An operation applied row by row; each row is one item.</summary>
internal abstract class RowJob : IParallelWork
{
    public int Rows;

    public int Items => Rows;

    public void Execute(int start, int end, int worker)
    {
        for (var row = start; row < end; row++)
        {
            ProcessRow(row);
        }
    }

    protected abstract void ProcessRow(int row);
}

internal sealed unsafe class QuantizeJob : RowJob
{
    public CpuTensor Input = null!;
    public SimdLevel Level;

    protected override void ProcessRow(int row) => Input.Quantized.QuantizeRow(Input.Row(row), row, Level);
}

internal sealed unsafe class RmsNormJob : RowJob
{
    public CpuTensor Input = null!;
    public CpuTensor? Delta;
    public CpuWeight Weight = null!;
    public CpuTensor Output = null!;
    public float Epsilon;

    protected override void ProcessRow(int row)
    {
        var x = Input.Row(row);
        if (Delta is not null)
        {
            VectorMath.Axpy(1f, Delta.Row(row), x, Input.Columns);
        }

        var group = Weight.Columns;
        var w = (float*)Weight.RowData(0);
        var output = Output.Row(row);
        for (var offset = 0; offset < Input.Columns; offset += group)
        {
            VectorMath.RmsNorm(x + offset, w, Epsilon, output + offset, group);
        }
    }
}

internal sealed unsafe class SiluMulJob : RowJob
{
    public CpuTensor Gate = null!;
    public CpuTensor Up = null!;
    public CpuTensor Output = null!;

    protected override void ProcessRow(int row) => VectorMath.SiluMul(Gate.Row(row), Up.Row(row), Output.Row(row), Gate.Columns);
}

internal sealed unsafe class AddBiasJob : RowJob
{
    public CpuTensor Tensor = null!;
    public CpuWeight Bias = null!;

    protected override void ProcessRow(int row) => VectorMath.Axpy(1f, (float*)Bias.RowData(0), Tensor.Row(row), Tensor.Columns);
}

internal sealed unsafe class EmbedJob : RowJob
{
    public CpuWeight Table = null!;
    public CpuTensor Output = null!;
    public ForwardBatch Batch = null!;

    protected override void ProcessRow(int row) => Table.DequantizeRow(Batch.TokenIds[row], Output.Row(row));
}

internal sealed unsafe class RopeKvJob : RowJob
{
    public CpuTensor Query = null!;
    public CpuTensor Key = null!;
    public CpuTensor Value = null!;
    public CpuRotaryEmbedding Rope = null!;
    public CpuKvCache Cache = null!;
    public int Layer;
    public ForwardBatch Batch = null!;

    protected override void ProcessRow(int row)
    {
        var position = Batch.Positions[row];
        var headDim = Rope.Spec.HeadDim;
        var q = Query.Row(row);
        for (var h = 0; h < Query.Columns; h += headDim)
        {
            Rope.Rotate(q + h, position);
        }

        var k = Key.Row(row);
        for (var h = 0; h < Key.Columns; h += headDim)
        {
            Rope.Rotate(k + h, position);
        }

        var slot = Batch.Slots[row];
        var bytes = Cache.SlotStride * sizeof(float);
        Buffer.MemoryCopy(k, Cache.Keys(Layer, slot), bytes, bytes);
        Buffer.MemoryCopy(Value.Row(row), Cache.Values(Layer, slot), bytes, bytes);
    }
}
