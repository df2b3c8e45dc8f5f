using System.ComponentModel;
using System.Text;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tools.Files;

/// <summary>
/// <c>files</c>: list_files, read_file and write_file confined to the run's workspace. A path is resolved against the
/// workspace and refused when it leaves it — through <c>..</c>, an absolute path or a symbolic link (run_code may create
/// links in the workspace, so each existing component's real target is checked too).
/// </summary>
internal sealed class WorkspaceFileTools : IToolFactory
{
    private const int MaxReadChars = 100_000;
    private const int MaxWriteChars = 1_000_000;

    public string Type => ToolTypes.Files;

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var root = Path.GetFullPath(context.Workspace);
        var list = AIFunctionFactory.Create(
            ([Description("Folder relative to the workspace; empty for its root.")] string path = "") =>
            {
                var folder = Resolve(root, path);
                if (!Directory.Exists(folder))
                {
                    throw new ToolException($"No folder '{path}' in the workspace.");
                }

                var entries = Directory.EnumerateFileSystemEntries(folder).Order(StringComparer.Ordinal)
                    .Select(e => Directory.Exists(e) ? Path.GetRelativePath(root, e) + "/" : $"{Path.GetRelativePath(root, e)} ({new FileInfo(e).Length} bytes)");
                return string.Join("\n", entries) is { Length: > 0 } text ? text : "(empty)";
            },
            "list_files", "Lists the files and folders of the run's workspace.");
        var read = AIFunctionFactory.Create(
            async ([Description("File path relative to the workspace.")] string path, CancellationToken cancellationToken = default) =>
            {
                var file = Resolve(root, path);
                if (!File.Exists(file))
                {
                    throw new ToolException($"No file '{path}' in the workspace.");
                }

                var text = await File.ReadAllTextAsync(file, cancellationToken);
                return text.Length <= MaxReadChars ? text : text[..MaxReadChars] + $"\n[truncated at {MaxReadChars} characters]";
            },
            "read_file", "Reads a text file of the run's workspace.");
        var write = AIFunctionFactory.Create(
            async ([Description("File path relative to the workspace.")] string path, [Description("The whole new content.")] string content,
                   CancellationToken cancellationToken = default) =>
            {
                if (content.Length > MaxWriteChars)
                {
                    throw new ToolException($"content is {content.Length} characters; at most {MaxWriteChars} are written.");
                }

                var file = Resolve(root, path);
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                await File.WriteAllTextAsync(file, content, Encoding.UTF8, cancellationToken);
                return $"Wrote {Encoding.UTF8.GetByteCount(content)} bytes to {Path.GetRelativePath(root, file)}.";
            },
            "write_file", "Writes (creates or replaces) a text file in the run's workspace.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>(
        [
            new ToolFunction(list, IsReadOnly: true, RequiresApproval: false),
            new ToolFunction(read, IsReadOnly: true, RequiresApproval: false),
            new ToolFunction(write, IsReadOnly: false, RequiresApproval: false),
        ]);
    }

    /// <summary>The full path of <paramref name="path"/> inside <paramref name="root"/>; a <see cref="ToolException"/> when it would leave it.</summary>
    public static string Resolve(string root, string path)
    {
        if (path.Contains('\0'))
        {
            throw new ToolException("The path contains a NUL character.");
        }

        var full = Path.GetFullPath(Path.Combine(root, path));
        if (!IsInside(root, full))
        {
            throw new ToolException($"'{path}' is outside the run's workspace.");
        }

        // Follow every existing component: a link inside the workspace must not point outside it.
        var current = root;
        foreach (var part in Path.GetRelativePath(root, full).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            var info = new FileInfo(current);
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName;
                if (target is null || !IsInside(root, target))
                {
                    throw new ToolException($"'{path}' goes through a link that leads outside the run's workspace.");
                }
            }
        }

        return full;
    }

    private static bool IsInside(string root, string full) =>
        full == root || full.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
