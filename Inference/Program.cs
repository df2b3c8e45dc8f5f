using AspireAi.Inference.Embeddings;
using AspireAi.Inference.Serving;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddEmbeddings();
builder.Services.AddOptions<InferenceOptions>().Bind(builder.Configuration.GetSection(InferenceOptions.Section));

var app = builder.Build();
app.UseOpenAiErrors();
app.MapDefaultEndpoints();
app.MapModelEndpoints();
app.MapEmbeddingEndpoints();
app.Run();
