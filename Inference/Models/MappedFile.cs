using System.IO.MemoryMappedFiles;

namespace AspireAi.Inference.Models;

/// <summary>A whole file mapped read-only, with a pointer to its first byte; an empty file maps to a null pointer.</summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private bool _disposed;

    private MappedFile(MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* start, long length)
    {
        _map = map;
        _view = view;
        Start = start;
        Length = length;
    }

    public byte* Start { get; }

    public long Length { get; }

    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static MappedFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        }

        if (info.Length == 0)
        {
            return new MappedFile(null, null, null, 0);
        }

        var map = MemoryMappedFile.CreateFromFile(
            new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read), null, 0, MemoryMappedFileAccess.Read,
            HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, info.Length, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            return new MappedFile(map, view, start + view.PointerOffset, info.Length);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    public ReadOnlySpan<byte> Span(long offset, int length) => new(Start + offset, length);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
    }
}
