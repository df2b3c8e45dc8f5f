using AspireAi.Gateway.Tests.Support;
using AspireAi.TestSupport;
using Microsoft.Playwright;
using Npgsql;

namespace AspireAi.Gateway.Tests;

/// <summary>
/// The web chat in a real headless Chromium (Debian's <c>/usr/bin/chromium</c> driven by Playwright; Playwright's own browser
/// download cannot work here): key entry, the model/agent picker, a streamed answer, a document upload and an answer with
/// citations from it. Screenshots are kept in <c>artifacts/gateway-webchat/</c> at the repository root. An agent's steps in
/// the page are tested against the real Agents service in AspireAi.Agents.Tests (WebChatAgentTests).
/// </summary>
public sealed class WebChatTests(TestStack stack)
{
    [Fact]
    public async Task A_person_connects_picks_a_model_chats_uploads_a_document_and_gets_an_answer_with_citations()
    {
        HeadlessChromium.SkipUnlessInstalled();

        await using (var db = new NpgsqlConnection(stack.AgentsDb))
        {
            await db.OpenAsync();
            await using var insert = new NpgsqlCommand(
                "INSERT INTO agents (tenant, name, instructions, model) VALUES ('webchat', 'researcher', 'Dig.', 'scripted-chat') ON CONFLICT DO NOTHING", db);
            await insert.ExecuteNonQueryAsync();
        }

        var (key, _) = await stack.Gateway.CreateKeyAsync("webchat");
        var artifacts = HeadlessChromium.ArtifactsFolder("gateway-webchat");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await HeadlessChromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 800 } });
        await page.GotoAsync(stack.Gateway.Address + "/");
        await Assertions.Expect(page).ToHaveTitleAsync("AspireAi chat");

        // A wrong key is told apart from a right one.
        await page.FillAsync("#api-key", "sk-wrong");
        await page.ClickAsync("#key-form button");
        await Assertions.Expect(page.Locator("#key-status")).ToContainTextAsync("Not connected");
        await page.FillAsync("#api-key", key);
        await page.ClickAsync("#key-form button");
        await Assertions.Expect(page.Locator("#key-status")).ToContainTextAsync("Connected:");
        var options = await page.Locator("#model option").AllInnerTextsAsync();
        Assert.Contains(ScriptedUpstream.Model, options);
        Assert.Contains(TestStack.EmbeddingModel, options);
        Assert.Contains("agent:researcher", options);

        // A streamed answer, chunk by chunk into the page.
        await page.SelectOptionAsync("#model", ScriptedUpstream.Model);
        await page.FillAsync("#prompt", "Hello there");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator("#messages li.assistant").Last).ToHaveTextAsync(ScriptedUpstream.Content(5));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "1-chat.png") });

        // A document uploaded to a collection, then an answer grounded in it, with its citation.
        var document = Path.Combine(artifacts, "volcano-notes.txt");
        await File.WriteAllTextAsync(document, "Kilauea on Hawaii is one of the most active volcanoes; its lava lake glows at night.");
        await page.FillAsync("#collection", "webchat-docs");
        await page.SetInputFilesAsync("#file", document);
        await page.ClickAsync("#upload");
        // The first upload loads the embedding model and ingests through Retrieval: on a busy 2-core machine that took
        // longer than the 5 s default (a CI run beside another one); the status it waits for persists once reached.
        await Assertions.Expect(page.Locator("#upload-status")).ToContainTextAsync("volcano-notes.txt: ingested", new() { Timeout = 60_000 });
        await page.CheckAsync("#use-retrieval");
        var marker = "Which volcano has a glowing lava lake? " + Guid.NewGuid();
        await page.FillAsync("#prompt", marker);
        await page.ClickAsync("#send");
        var answer = page.Locator("#messages li.assistant").Last;
        await Assertions.Expect(answer.Locator(".citations li")).ToHaveCountAsync(1);
        await Assertions.Expect(answer.Locator(".citations")).ToContainTextAsync("volcano-notes.txt");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "2-retrieval.png"), FullPage = true });

        // The model was given the retrieved text as numbered sources.
        var sent = stack.Scripted.SelectMany(s => s.Requests).Single(r => r.Body.GetRawText().Contains(marker, StringComparison.Ordinal)).Body;
        var system = sent.GetProperty("messages")[0];
        Assert.Equal("system", system.GetProperty("role").GetString());
        Assert.Contains("[1] Kilauea", system.GetProperty("content").GetString());
    }
}
