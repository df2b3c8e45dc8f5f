using System.Diagnostics;
using System.Text.Json;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Download;

/// <summary>
/// <see cref="UserPath"/>: a relative path the user typed is found in the process's working directory first, then in the
/// shell's (<c>PWD</c>), where <c>dotnet run --project Inference</c> has moved the process to the project folder.
/// </summary>
public sealed class UserPathTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Folder(string name) => Directory.CreateDirectory(_temp.File(name)).FullName;

    [Fact]
    public void A_relative_path_is_found_in_the_working_directory_first_and_returned_as_typed()
    {
        var (work, shell) = (Folder("work"), Folder("shell"));
        File.WriteAllText(Path.Combine(work, "m.gguf"), "work");
        File.WriteAllText(Path.Combine(shell, "m.gguf"), "shell");

        Assert.Equal("m.gguf", UserPath.Find("m.gguf", work, shell));
    }

    [Fact]
    public void A_relative_path_missing_from_the_working_directory_is_found_in_the_shells()
    {
        var (work, shell) = (Folder("work"), Folder("shell"));
        Directory.CreateDirectory(Path.Combine(shell, "models", "hf-folder"));
        File.WriteAllText(Path.Combine(shell, "models", "m.gguf"), "shell");

        Assert.Equal(Path.Combine(shell, "models", "m.gguf"), UserPath.Find("models/m.gguf", work, shell));
        Assert.Equal(Path.Combine(shell, "models", "hf-folder"), UserPath.Find("./models/hf-folder", work, shell));
    }

    [Fact]
    public void A_path_found_nowhere_is_null_and_the_message_names_where_it_was_looked_for()
    {
        var (work, shell) = (Folder("work"), Folder("shell"));

        Assert.Null(UserPath.Find("absent.gguf", work, shell));
        Assert.Equal($" (looked in {work} and in {shell})", UserPath.Searched("absent.gguf", work, shell));
        // The shell's folder only when it is another existing, absolute one; an absolute path needs no explanation.
        Assert.Equal($" (looked in {work})", UserPath.Searched("absent.gguf", work, work));
        Assert.Equal($" (looked in {work})", UserPath.Searched("absent.gguf", work, "relative/pwd"));
        Assert.Equal($" (looked in {work})", UserPath.Searched("absent.gguf", work, _temp.File("gone")));
        Assert.Null(UserPath.Find(Path.Combine(work, "absent.gguf"), work, shell));
        Assert.Equal("", UserPath.Searched(Path.Combine(work, "absent.gguf"), work, shell));
    }

    [Fact]
    public async Task The_cli_finds_a_model_relative_to_the_shell_when_started_in_the_project_folder_as_dotnet_run_does()
    {
        // The real case, out of process: the working directory is the Inference project's folder (where `dotnet run
        // --project Inference` starts a web project) and PWD the repository root, where the user typed the relative path.
        var model = TestPaths.SharedModel("stories15M-q8_0.gguf");
        var typed = Path.GetRelativePath(TestPaths.RepositoryRoot, model);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.Combine(TestPaths.RepositoryRoot, "Inference"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "AspireAi.Inference.dll"), "tokenize", "--model", typed, "--text", "Once upon a time" },
            Environment = { ["PWD"] = TestPaths.RepositoryRoot },
        };
        using var process = Process.Start(start)!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await stderr}");
        var ids = JsonSerializer.Deserialize<int[]>(await stdout)!;
        Assert.Equal(1, ids[0]);  // <s>, then the text's pieces
        Assert.True(ids.Length > 2, await stdout);
    }
}
