"""Hand-tagged captions for the noun heuristic: (caption, its nouns in order, UD-style NOUN and PROPN).

Web alt-texts, dense VLM-style captions and the toy world's captions; tagged by hand by the author of
`captioners/nouns.py` before measuring, so the agreement is a check of the heuristic, not a benchmark
against an independent tagger.
"""

GOLD: list[tuple[str, list[str]]] = [
    ("A man riding a horse on the beach at sunset", ["man", "horse", "beach", "sunset"]),
    ("Red dress with floral print", ["dress", "print"]),
    ("Two cats sleeping on a couch", ["cats", "couch"]),
    (
        "Modern kitchen interior with white cabinets and marble countertops",
        ["kitchen", "interior", "cabinets", "marble", "countertops"],
    ),
    ("Vintage wooden chair isolated on white background", ["chair", "background"]),
    ("Beautiful young woman drinking coffee in a cafe", ["woman", "coffee", "cafe"]),
    ("Aerial view of Paris with the Eiffel Tower", ["view", "Paris", "Eiffel", "Tower"]),
    (
        "Stock photo of a happy family having a picnic in the park",
        ["Stock", "photo", "family", "picnic", "park"],
    ),
    ("Logo design for a coffee shop", ["Logo", "design", "coffee", "shop"]),
    ("The dog is running in the snow", ["dog", "snow"]),
    ("Close-up of a bee on a yellow flower", ["Close-up", "bee", "flower"]),
    ("Black and white photograph of an old barn", ["photograph", "barn"]),
    (
        "Hand drawn vector illustration of a cute cartoon cat",
        ["Hand", "vector", "illustration", "cartoon", "cat"],
    ),
    ("Children playing football in the street", ["Children", "football", "street"]),
    ("New York City skyline at night", ["New", "York", "City", "skyline", "night"]),
    ("Mountain lake reflecting the sky", ["Mountain", "lake", "sky"]),
    ("Bowl of fresh fruit on a wooden table", ["Bowl", "fruit", "table"]),
    ("Woman holding an umbrella in the rain", ["Woman", "umbrella", "rain"]),
    (
        "A plate of spaghetti with tomato sauce and basil",
        ["plate", "spaghetti", "tomato", "sauce", "basil"],
    ),
    (
        "The image shows a small wooden cabin surrounded by tall pine trees, with snow covering the roof "
        "and the ground.",
        ["image", "cabin", "pine", "trees", "snow", "roof", "ground"],
    ),
    (
        "In the foreground, a woman in a red coat walks along a cobblestone street lined with old buildings.",
        ["foreground", "woman", "coat", "cobblestone", "street", "buildings"],
    ),
    (
        "The painting is done in a warm color palette, with soft brushstrokes that give it a dreamy atmosphere.",
        ["painting", "color", "palette", "brushstrokes", "atmosphere"],
    ),
    (
        "A golden retriever sits on the grass next to a blue ball, looking up at the camera with its tongue out.",
        ["retriever", "grass", "ball", "camera", "tongue"],
    ),
    (
        "The sky is filled with dark clouds, and a bolt of lightning strikes the distant hills.",
        ["sky", "clouds", "bolt", "lightning", "hills"],
    ),
    ("Describe this image and its style in a very detailed manner", ["image", "style", "manner"]),
    (
        "This is a digital illustration in a flat style, featuring a city at night with bright lights in "
        "the windows.",
        ["illustration", "style", "city", "night", "lights", "windows"],
    ),
    (
        "A bowl of ramen with a soft-boiled egg, slices of pork, green onions and seaweed sits on a dark table.",
        ["bowl", "ramen", "egg", "slices", "pork", "onions", "seaweed", "table"],
    ),
    (
        "The photograph captures a busy market where vendors sell vegetables under colorful umbrellas.",
        ["photograph", "market", "vendors", "vegetables", "umbrellas"],
    ),
    (
        "An old man with a white beard reads a newspaper on a park bench.",
        ["man", "beard", "newspaper", "park", "bench"],
    ),
    ("a red circle above a small blue square", ["circle", "square"]),
    (
        "a picture of two shapes on a striped background: a large green star to the left of a yellow triangle",
        ["picture", "shapes", "background", "star", "left", "triangle"],
    ),
    ("a red circle and a blue square", ["circle", "square"]),
    ("a small black star below an orange circle", ["star", "circle"]),
    ("Free shipping on all orders over $50", ["shipping", "orders"]),
    ("Portrait of a young girl with curly hair", ["Portrait", "girl", "hair"]),
    ("Sunflowers in a field under a clear blue sky", ["Sunflowers", "field", "sky"]),
    ("Man working on laptop at home office", ["Man", "laptop", "home", "office"]),
    ("Christmas tree decorated with lights and ornaments", ["Christmas", "tree", "lights", "ornaments"]),
    ("Abstract background with blue waves", ["background", "waves"]),
    (
        "A cozy living room with a gray sofa, a wooden coffee table and large windows overlooking a garden.",
        ["living", "room", "sofa", "coffee", "table", "windows", "garden"],
    ),
]

# Written after the rules were tuned on GOLD and measured once, without changing the rules after:
# the honest figure for unseen captions.
HELDOUT: list[tuple[str, list[str]]] = [
    ("Young couple walking their dog along the river", ["couple", "dog", "river"]),
    ("Fresh vegetables at the farmers market", ["vegetables", "farmers", "market"]),
    ("Silhouette of a tree against an orange sunset sky", ["Silhouette", "tree", "sunset", "sky"]),
    ("Businessman talking on the phone in his office", ["Businessman", "phone", "office"]),
    ("Watercolor painting of roses in a glass vase", ["Watercolor", "painting", "roses", "glass", "vase"]),
    ("Snow covered mountains under a starry night sky", ["Snow", "mountains", "night", "sky"]),
    ("Girl reading a book under a tree", ["Girl", "book", "tree"]),
    ("Yellow taxi on a busy street in Manhattan", ["taxi", "street", "Manhattan"]),
    ("Set of kitchen utensils on a white background", ["Set", "kitchen", "utensils", "background"]),
    ("Cute puppy playing with a ball in the garden", ["puppy", "ball", "garden"]),
    (
        "The image depicts a quiet harbor at dawn, where fishing boats rest on calm water and gulls circle "
        "overhead.",
        ["image", "harbor", "dawn", "fishing", "boats", "water", "gulls"],
    ),
    (
        "A woman with long brown hair stands in a field of lavender, wearing a white dress and a straw hat.",
        ["woman", "hair", "field", "lavender", "dress", "straw", "hat"],
    ),
    (
        "The illustration uses bold outlines and flat colors, giving the scene a playful, cartoonish look.",
        ["illustration", "outlines", "colors", "scene", "look"],
    ),
    (
        "On the table there is a cup of coffee, a croissant on a small plate, and an open notebook with a pen.",
        ["table", "cup", "coffee", "croissant", "plate", "notebook", "pen"],
    ),
    (
        "Two children build a sandcastle on the beach while waves roll onto the shore behind them.",
        ["children", "sandcastle", "beach", "waves", "shore"],
    ),
    (
        "a picture of one shape on a dotted background: a small purple triangle",
        ["picture", "shape", "background", "triangle"],
    ),
    ("a large orange square to the right of a green star", ["square", "right", "star"]),
    ("Handmade ceramic mug with blue glaze", ["mug", "glaze"]),
    ("Old lighthouse on a rocky coast during a storm", ["lighthouse", "coast", "storm"]),
    ("Chef preparing sushi in a restaurant kitchen", ["Chef", "sushi", "restaurant", "kitchen"]),
]
