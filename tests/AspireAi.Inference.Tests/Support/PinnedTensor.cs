using System.Runtime.CompilerServices;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Tests.Support;

/// <summary>Tensor bytes in a pinned array, viewed as a <see cref="TensorView"/> (what a model reader hands the backend).</summary>
public sealed unsafe class PinnedTensor
{
    public PinnedTensor(string name, GgmlType type, int rows, int columns, byte[] data)
    {
        Name = name;
        Type = type;
        Rows = rows;
        Columns = columns;
        Data = GC.AllocateArray<byte>(Math.Max(data.Length, 1), pinned: true);
        data.CopyTo(Data, 0);
        Length = data.Length;
    }

    public string Name { get; }

    public GgmlType Type { get; }

    public int Rows { get; }

    public int Columns { get; }

    public byte[] Data { get; }

    private int Length { get; }

    public TensorView View => new(Name, Type, Rows == 1 ? [Columns] : [Columns, Rows], (nint)Unsafe.AsPointer(ref Data[0]), Length);

    public double[] Dequantized => GgmlReference.Dequantize(Type, Data[..Length], Rows, Columns);
}
