package snapshot

// The snapshot's content. The Roadmap hub lists the 18 citing papers the
// real hub lists (titles are bibliographic facts); every summary, abstract,
// author name and figure here is written by this project for its demo and
// tests, in its own words.

// RoadmapHubID is the uuid of the real hub of "A Roadmap to Pluralistic
// Alignment" on pith.science, reused so that offline and online runs key
// their records the same way.
const RoadmapHubID = "667ba460-8f85-44de-abed-e988dbbf316b"

// IndexingHubID and UnresolvedHubID are hubs invented for the snapshot.
const (
	IndexingHubID   = "3f1c2b9e-5a7d-4c21-9b8e-0d6f4a1e2c77"
	UnresolvedHubID = "b86e0d41-27c3-4f0a-a5e9-7c1d3b9f6a02"
)

var roadmapPapers = []Paper{
	{Title: "Curated Synthetic Data Doesn't Have to Collapse: A Theoretical Study of Generative Retraining with Pluralistic Preferences",
		Summary: "When a generator is retrained on its own curated outputs under pluralistic preferences, its output distribution stays diverse and settles at a weighted Nash bargaining point rather than collapsing.",
		Cat:     "cs.LG", Date: "2026-05-02", Verdict: "unverdicted", Novelty: "6.5", Refs: 41},
	{Title: "Where Paths Split: Localized, Calibrated Control of Moral Reasoning in Large Language Models",
		Summary: "The method finds the transformer blocks where moral judgements diverge and steers residual-stream directions there, so a model can be conditioned on a chosen ethical framework at inference time.",
		Cat:     "cs.CL", Date: "2026-05-04", Verdict: "unverdicted", Novelty: "6.0", Refs: 37},
	{Title: "Three Models of RLHF Annotation: Extension, Evidence, and Authority",
		Summary: "Argues that RLHF annotation should be split into dimensions, each treated under one of three models (extension, evidence or authority), rather than pushed through one pipeline.",
		Cat:     "cs.AI", Date: "2026-05-05", Verdict: "unverdicted", Novelty: "5.5", Refs: 28},
	{Title: "Language Models Don't Know What You Want: Evaluating Personalization in Deep Research Needs Real Users",
		Summary: "Personalized deep-research assistants must be evaluated with real users, since LLM judges miss the subtle errors that researchers care about.",
		Cat:     "cs.HC", Date: "2026-05-06", Verdict: "unverdicted", Novelty: "5.0", Refs: 33},
	{Title: "Training-Free Cultural Alignment of Large Language Models via Persona Disagreement",
		Summary: "Disagreement among survey personas within a country is turned into a bounded logit correction that lowers cultural misalignment across twenty countries without updating any weights.",
		Cat:     "cs.CL", Date: "2026-05-07", Verdict: "CONDITIONAL", Novelty: "6.5", Refs: 45},
	{Title: "Positive Alignment: Artificial Intelligence for Human Flourishing",
		Summary: "Proposes AI systems that actively support human flourishing while remaining safe, as a complement to alignment research focused on preventing harm.",
		Cat:     "cs.AI", Date: "2026-05-08", Verdict: "unverdicted", Novelty: "none"},
	{Title: "Understanding Annotator Safety Policy with Interpretability",
		Summary: "Models trained on each annotator's labels recover that annotator's safety policy, predict their judgements and expose why raters disagree, from ambiguous policies to differing values.",
		Cat:     "cs.CL", Date: "2026-05-09", Verdict: "unverdicted", Novelty: "6.0", Refs: 39},
	{Title: "Multilingual Safety Alignment via Self-Distillation",
		Summary: "Self-distillation with a dual-perspective safety weighting carries safety behaviour from high-resource to low-resource languages without target-language response data.",
		Cat:     "cs.CL", Date: "2026-05-10", Verdict: "unverdicted", Novelty: "5.5", Refs: 31},
	{Title: "Personalized RewardBench: Evaluating Reward Models with Human Aligned Personalization",
		Summary: "A benchmark of personalized preferences shows current reward models reach only about three quarters accuracy on individual users' preferences, and predicts downstream best-of-n and PPO results better than earlier benchmarks.",
		Cat:     "cs.CL", Date: "2026-05-11", Verdict: "unverdicted", Novelty: "6.0", Refs: 2},
	{Title: "Cultural Authenticity: Comparing LLM Cultural Representations to Native Human Expectations",
		Summary: "Language models portray non-Western cultures through a Western lens that matches native respondents' priorities poorly, and different models make strongly correlated errors.",
		Cat:     "cs.CY", Date: "2026-05-12", Verdict: "unverdicted", Novelty: "5.5", Refs: 36},
	{Title: "Value Alignment Tax: Measuring Value Trade-offs in LLM Alignment",
		Summary: "Measures how aligning a model towards one value shifts the others, quantifying trade-offs across a network of interconnected values grounded in Schwartz's theory.",
		Cat:     "cs.CL", Date: "2026-05-13", Verdict: "unverdicted", Novelty: "6.5", Refs: 40},
	{Title: "Language Model Goal Selection Differs from Humans' in a Self-Directed Learning Task",
		Summary: "In a self-directed learning task language models pick goals unlike people do, settling on a single solution with little variability across instances where humans vary widely.",
		Cat:     "cs.AI", Date: "2026-05-14", Verdict: "unverdicted", Novelty: "5.0", Refs: 24},
	{Title: "Measuring Human Preferences in RLHF is a Social Science Problem",
		Summary: "Treats RLHF preference collection as a measurement-validity problem: annotators often give non-attitudes and constructed answers instead of stable values.",
		Cat:     "cs.CY", Date: "2026-05-15", Verdict: "reject", Novelty: "4.5", Refs: 30},
	{Title: "The Algorithmic Gaze of Image Quality Assessment: An Audit and Trace Ethnography of the LAION-Aesthetics Predictor",
		Summary: "An audit of an aesthetics predictor used to filter training images finds it favours Western and male-coded content and filters out other styles and communities.",
		Cat:     "cs.CV", Date: "2026-05-16", Verdict: "unverdicted", Novelty: "5.5", Refs: 52},
	{Title: "When to Ask a Question: Understanding Communication Strategies in Generative AI Tools",
		Summary: "A model of the trade-off between asking and inferring shows that a generative assistant which asks users about their preferences reduces bias against minority preferences.",
		Cat:     "cs.HC", Date: "2026-05-17", Verdict: "unverdicted", Novelty: "6.0", Refs: 27},
	{Title: "Quantifying and Predicting Disagreement in Graded Human Ratings",
		Summary: "Disagreement among annotators rating toxic language can be partly predicted from the text, and the most contested items are the hardest to estimate.",
		Cat:     "cs.CL", Date: "2026-05-18", Verdict: "unverdicted", Novelty: "5.0", Refs: 29},
	{Title: "Relative Principals, Pluralistic Alignment, and the Structural Value Alignment Problem",
		Summary: "Recasts value alignment as a governance problem along objectives, information and principals, arguing it depends on context and cannot be solved by technical design alone.",
		Cat:     "cs.AI", Date: "2026-05-19", Verdict: "unverdicted", Novelty: "5.5", Refs: 1},
	{Title: "Evaluating AI-Generated Images of Cultural Artifacts with Community-Informed Rubrics",
		Summary: "Working with local communities to define what is appropriate yields culturally grounded rubrics for judging text-to-image outputs of cultural artifacts.",
		Cat:     "cs.CV", Date: "2026-05-20", Verdict: "unverdicted", Novelty: "5.0", Refs: 34},
}

const roadmapAbstract = "A position paper on aligning AI systems with people who hold diverse values. " +
	"It names three kinds of pluralistic model (Overton, steerable and distributional) and three kinds " +
	"of pluralistic benchmark (multi-objective, trade-off steerable and jury-pluralistic), and argues " +
	"that current alignment methods may reduce distributional pluralism."

var indexingPapers = []Paper{
	{Title: "Jury Ensembles for Contested Content Moderation",
		Summary: "Aggregates the ratings of many individual annotators through a simulated jury, so moderation decisions reflect disagreement instead of a single majority label.",
		Cat:     "cs.CL", Date: "2026-03-02", Verdict: "unverdicted", Novelty: "6.0", Refs: 22},
	{Title: "Pareto Fronts of Helpfulness and Harmlessness",
		Summary: "Evaluates chat models on several objectives at once and reports the Pareto front between helpfulness, harmlessness and honesty.",
		Cat:     "cs.LG", Date: "2026-03-09", Verdict: "CONDITIONAL", Novelty: "5.5", Refs: 19},
	{Title: "Persona Prompts Steer Survey Answers",
		Summary: "Conditioning a model on a persona steers its answers to opinion surveys toward that persona's group, and the answer distribution can be calibrated to a target population.",
		Cat:     "cs.CL", Date: "2025-11-20", Verdict: "unverdicted", Novelty: "none"},
	{Title: "Scaling Laws for Sparse Retrieval",
		Summary: "Reports how retrieval quality grows with index size and model size for sparse retrievers.",
		Cat:     "cs.IR", Date: "2025-12-01", Verdict: "reject", Novelty: "4.0", Refs: 15},
}

var unresolvedPapers = []Paper{
	{Title: "Many Voices, One Label? Modelling Annotator Disagreement",
		Summary: "Trains models on annotator-level labels and shows they capture rater disagreement better than majority-vote training.",
		Cat:     "cs.CL", Date: "2026-02-14", Verdict: "unverdicted", Novelty: "5.5", Refs: 26},
}

// DefaultHubs are the three hubs of the shipped snapshot.
func DefaultHubs() []Hub {
	bg := 71
	return []Hub{
		{
			ID: RoadmapHubID, Title: "A Roadmap to Pluralistic Alignment", CitedArxiv: "2402.05070",
			Canonical: true, BackgroundPct: &bg, Abstract: roadmapAbstract,
			RoleFacet:     map[string]int{"background": 5, "other": 2},
			PolarityFacet: map[string]int{"unclear": 1},
			Papers:        withFullText(roadmapPapers),
		},
		{
			ID: IndexingHubID, Title: "Learning from Many Raters: A Survey of Annotator Disagreement", CitedArxiv: "2512.01234",
			Indexing: true, HeadlineCount: 61, Abstract: "A survey of methods that learn from the labels of individual annotators rather than from aggregated gold labels.",
			Papers: withFullText(indexingPapers),
		},
		{
			ID: UnresolvedHubID, Title: "[14] A. Rater and B. Voter. Learning from crowds without a gold standard. In Proc. of a Workshop, 2021.",
			Unresolved: true, Indexing: true, SplitCount: true,
			Papers: withFullText(unresolvedPapers),
		},
	}
}
