using System.Runtime.InteropServices;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// One rank's part of a tensor, as a <see cref="TensorView"/> a backend loads like any other. A range of rows is a
/// contiguous range of the file's bytes, viewed in place; a range of columns is gathered row by row (whole blocks, for a
/// quantized type) into native memory that lives until this slice is disposed, after the backend has copied it. A range of
/// rows that runs past the tensor (the padded vocabulary of <see cref="ShardPlan.VocabularyShard"/>) is copied, its missing
/// rows zero bytes: a zero row in every ggml type (float zeros; quantized blocks whose scales and mins are 0).
/// </summary>
internal sealed unsafe class WeightSlice : IDisposable
{
    private void* _gathered;

    private WeightSlice(TensorView view, void* gathered)
    {
        View = view;
        _gathered = gathered;
    }

    public TensorView View { get; }

    public static WeightSlice Of(TensorView tensor, WeightShard shard)
    {
        var columns = tensor.Shape[0];
        var rows = tensor.Shape.Length > 1 ? tensor.Shape[1] : 1;
        var range = shard.Range;
        switch (shard.Axis)
        {
            case ShardAxis.Replicated:
                return new WeightSlice(tensor, null);
            case ShardAxis.Rows:
            {
                var rowBytes = GgmlTypeInfo.RowBytes(tensor.Type, columns);
                if (range.End <= rows)
                {
                    var view = tensor with { Shape = [columns, range.Count], Data = tensor.Data + (nint)(range.Start * rowBytes), ByteLength = range.Count * rowBytes };
                    return new WeightSlice(view, null);
                }

                var bytes = range.Count * rowBytes;
                var padded = NativeMemory.AllocZeroed((nuint)bytes);
                var real = Math.Max(0, rows - range.Start) * rowBytes;
                Buffer.MemoryCopy((byte*)tensor.Data + range.Start * rowBytes, padded, bytes, real);
                return new WeightSlice(tensor with { Shape = [columns, range.Count], Data = (nint)padded, ByteLength = bytes }, padded);
            }

            case ShardAxis.Columns:
            {
                var rowBytes = GgmlTypeInfo.RowBytes(tensor.Type, columns);
                var offset = GgmlTypeInfo.RowBytes(tensor.Type, range.Start);
                var sliceBytes = GgmlTypeInfo.RowBytes(tensor.Type, range.Count);
                var gathered = NativeMemory.Alloc((nuint)(rows * sliceBytes));
                for (long r = 0; r < rows; r++)
                {
                    Buffer.MemoryCopy((byte*)tensor.Data + r * rowBytes + offset, (byte*)gathered + r * sliceBytes, sliceBytes, sliceBytes);
                }

                long[] shape = tensor.Shape.Length > 1 ? [range.Count, rows] : [range.Count];
                return new WeightSlice(tensor with { Shape = shape, Data = (nint)gathered, ByteLength = rows * sliceBytes }, gathered);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(shard), shard.Axis, "Unknown shard axis.");
        }
    }

    public void Dispose()
    {
        NativeMemory.Free(_gathered);
        _gathered = null;
    }
}
