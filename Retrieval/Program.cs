using AspireAi.Retrieval;
using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.Documents;
using AspireAi.Retrieval.Embeddings;
using AspireAi.Retrieval.Ingestion;
using AspireAi.Retrieval.Search;
using AspireAi.Retrieval.VectorStores;
using AspireAi.Retrieval.VectorStores.Embedded;
using AspireAi.Retrieval.VectorStores.Qdrant;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddNpgsqlDataSource("retrievaldb");
builder.Services.AddPostgresMigrations(RetrievalSchema.Migrations);
builder.Services.AddOptions<RetrievalOptions>().Bind(builder.Configuration.GetSection(RetrievalOptions.Section));
var options = builder.Configuration.GetSection(RetrievalOptions.Section).Get<RetrievalOptions>() ?? new RetrievalOptions();
// Base64 in JSON is a third larger than the document; multipart carries it as is.
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = options.MaxDocumentBytes * 4 / 3 + 1024 * 1024);

builder.Services.AddHttpClient(EmbeddingService.HttpClientName);
builder.Services.AddHttpClient("documents");
builder.Services.AddSingleton<EmbeddingService>();

// The vector store follows the connection strings, never a mode: Qdrant when it is configured, else the embedded store.
if (builder.Configuration.GetConnectionString("qdrant") is { Length: > 0 } qdrant)
{
    builder.Services.AddSingleton(QdrantChunkStore.Connect(qdrant));
    builder.Services.AddSingleton<IChunkStore, QdrantChunkStore>();
}
else
{
    builder.Services.AddSingleton<EmbeddedIndexes>();
    builder.Services.AddSingleton<IChunkStore, EmbeddedChunkStore>();
    builder.Services.AddHostedService<EmbeddedIndexLoader>(); // after the migrations: hosted services start in order
}

builder.Services.AddSingleton<CollectionStore>();
builder.Services.AddSingleton<DocumentStore>();
builder.Services.AddSingleton<IngestionStore>();
builder.Services.AddSingleton<IngestionPipeline>();
builder.Services.AddSingleton<IngestionWorker>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<IngestionWorker>());

var app = builder.Build();
app.UseOpenAiErrors();
app.MapDefaultEndpoints();
app.MapCollectionEndpoints();
app.MapDocumentEndpoints();
app.MapIngestionEndpoints();
app.MapSearchEndpoints();
app.Logger.LogInformation("Retrieval: vector store '{Store}'", app.Services.GetRequiredService<IChunkStore>().Name);
app.Run();
