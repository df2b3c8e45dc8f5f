using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends;

/// <summary>A weight uploaded to a backend: <see cref="Rows"/> × <see cref="Columns"/> (N × K) in its file's type.</summary>
public abstract class DeviceWeight : IDisposable
{
    protected DeviceWeight(string name, GgmlType type, int rows, int columns)
    {
        Name = name;
        Type = type;
        Rows = rows;
        Columns = columns;
    }

    public string Name { get; }

    public GgmlType Type { get; }

    /// <summary>Output features N (1 for a vector such as a norm weight or a bias).</summary>
    public int Rows { get; }

    /// <summary>Input features K: the contiguous dimension.</summary>
    public int Columns { get; }

    /// <summary>Bytes the backend keeps for this weight (reported by the benchmark as bytes moved per token).</summary>
    public abstract long ByteSize { get; }

    public abstract void Dispose();
}
