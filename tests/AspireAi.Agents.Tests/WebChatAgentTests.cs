using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using AspireAi.TestSupport;
using Microsoft.Playwright;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The gateway's web chat in a real headless Chromium, talking to the real Agents service through the real gateway: a
/// person picks an agent, asks, and sees the run's steps (the tool call and its result) above the streamed answer, with
/// the agent's citations under it. Real Retrieval and embeddings behind the search_documents tool. The model is scripted
/// (the only fake) because the test needs it to call search_documents and then answer from what came back.
/// </summary>
public sealed class WebChatAgentTests(PostgresServer postgres, EmbeddingServer embeddings, RedisServer redis)
    : IClassFixture<EmbeddingServer>, IClassFixture<RedisServer>
{
    [Fact]
    public async Task A_person_sees_an_agent_runs_steps_and_citations_in_the_web_chat()
    {
        HeadlessChromium.SkipUnlessInstalled();
        var models = new ScriptedModels((_, messages, _) => ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text("From the handbook: " + result.Result!.ToString()!.Split('\n')[0])
            : ScriptedModels.Call("search_documents", new() { ["query"] = ScriptedModels.LastUser(messages), ["top_k"] = 1 }));
        await using var stack = await AgentsBehindGateway.StartAsync("webchat", models, postgres, embeddings, redis);
        var gateway = stack.Gateway;
        var key = await gateway.CreateKeyAsync("webchat");
        using (var client = await gateway.ClientForNewKeyAsync("webchat"))
        {
            await (await client.PutAsync("/v1/collections/handbook", null)).JsonAsync(HttpStatusCode.Created);
            await (await client.PostAsJsonAsync("/v1/collections/handbook/documents", new
            {
                id = "vacation-policy",
                text = "Vacation policy. Every full-time employee receives 27 paid vacation days per calendar year.",
            })).JsonAsync(HttpStatusCode.Created);
            await client.CreateAgentAsync(new
            {
                name = "hr", instructions = "Answer questions about the employee handbook, citing sources.", model = "worker",
                tools = new object[] { new { type = "search_documents", collection = "handbook" } },
            });
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await HeadlessChromium.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 800 } });
        await page.GotoAsync(gateway.Address + "/");
        await page.FillAsync("#api-key", key);
        await page.ClickAsync("#key-form button");
        await Assertions.Expect(page.Locator("#key-status")).ToContainTextAsync("Connected:");
        await page.SelectOptionAsync("#model", "agent:hr");
        await page.FillAsync("#prompt", "How many paid days off do staff get each year?");
        await page.ClickAsync("#send");

        var answer = page.Locator("#messages li.assistant").Last;
        await Assertions.Expect(answer.Locator(".content")).ToContainTextAsync("27 paid vacation days");
        await Assertions.Expect(answer.Locator(".content")).ToContainTextAsync("From the handbook: [1] (document vacation-policy)");
        var steps = answer.Locator(".steps li");
        await Assertions.Expect(steps).ToHaveTextAsync(new Regex[]
        {
            new("^writing the answer$"),
            new(@"^calling search_documents \{""query"":""How many paid days off"),
            new("^search_documents returned .*vacation-policy"),
        });
        await Assertions.Expect(answer.Locator(".citations li")).ToHaveTextAsync(["vacation-policy (chunk 0)"]);
        await page.ScreenshotAsync(new PageScreenshotOptions
        {
            Path = Path.Combine(HeadlessChromium.ArtifactsFolder("agents-webchat"), "agent-steps.png"),
            FullPage = true,
        });
    }
}
