namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Rows of a weight split across workers in chunks of 16: whole cache lines of each output row, and whole row groups of the
/// quantized layouts (<see cref="CpuWeight.GroupRows"/>), at positions that do not depend on the thread count.
/// </summary>
internal sealed unsafe class MatMulJob : IParallelWork
{
    public CpuWeight Weight = null!;
    public CpuTensor Input = null!;
    public CpuTensor Output = null!;
    public int Tokens;
    public SimdLevel Level;

    public void Execute(int worker, int workerCount)
    {
        var (start, end) = WorkerPool.Split(Weight.Rows, worker, workerCount, CpuWeight.GroupRows);
        if (start >= end)
        {
            return;
        }

        if (Weight.IsQuantized)
        {
            if (Level == SimdLevel.Portable)
            {
                PortableKernels.QuantRows(Weight, Input.Quantized, Tokens, Output.Data, start, end);
            }
            else
            {
                QuantMatMulKernel.Run(Weight, Input.Quantized, Tokens, Output.Data, start, end, Level == SimdLevel.Avx512);
            }
        }
        else if (Level == SimdLevel.Portable)
        {
            PortableKernels.FloatRows(Weight, Input.Data, Input.Columns, Tokens, Output.Data, start, end);
        }
        else
        {
            FloatMatMulKernel.Run(Weight, Input.Data, Input.Columns, Tokens, Output.Data, start, end, Level == SimdLevel.Avx512);
        }
    }
}

/// <summary>An operation applied row by row; rows split across workers.</summary>
internal abstract class RowJob : IParallelWork
{
    public int Rows;

    public void Execute(int worker, int workerCount)
    {
        var (start, end) = WorkerPool.Split(Rows, worker, workerCount);
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
        Cache.Store(k, Cache.Keys(Layer, slot));
        Cache.Store(Value.Row(row), Cache.Values(Layer, slot));
    }
}
