"""Class names of the supported datasets, in label-map index order."""

VOC = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

# stuffthingmaps PNG value v is COCO-Stuff label id v + 1 (labels.txt of the
# cocostuff repository); 255 is 'unlabeled'. Thing ids that COCO never
# annotated (street sign, hat, ...) keep their slots.
COCO_STUFF = tuple("""
person bicycle car motorcycle airplane bus train truck boat traffic_light
fire_hydrant street_sign stop_sign parking_meter bench bird cat dog horse
sheep cow elephant bear zebra giraffe hat backpack umbrella shoe eye_glasses
handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat
baseball_glove skateboard surfboard tennis_racket bottle plate wine_glass cup
fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog
pizza donut cake chair couch potted_plant bed mirror dining_table window desk
toilet door tv laptop mouse remote keyboard cell_phone microwave oven toaster
sink refrigerator blender book clock vase scissors teddy_bear hair_drier
toothbrush hair_brush banner blanket branch bridge building-other bush
cabinet cage cardboard carpet ceiling-other ceiling-tile cloth clothes clouds
counter cupboard curtain desk-stuff dirt door-stuff fence floor-marble
floor-other floor-stone floor-tile floor-wood flower fog food-other fruit
furniture-other grass gravel ground-other hill house leaves light mat metal
mirror-stuff moss mountain mud napkin net paper pavement pillow plant-other
plastic platform playingfield railing railroad river road rock roof rug salad
sand sea shelf sky-other skyscraper snow solid-other stairs stone straw
structural-other table tent textile-other towel tree vegetable wall-brick
wall-concrete wall-other wall-panel wall-stone wall-tile wall-wood
water-other waterdrops window-blind window-other wood
""".split())

# ADEChallengeData2016 (objectInfo150); index 0 is 'other' (unlabelled).
ADE20K = ('other',) + tuple("""
wall building sky floor tree ceiling road bed windowpane grass cabinet
sidewalk person earth door table mountain plant curtain chair car water
painting sofa shelf house sea mirror rug field armchair seat fence desk rock
wardrobe lamp bathtub railing cushion base box column signboard
chest_of_drawers counter sand sink skyscraper fireplace refrigerator
grandstand path stairs runway case pool_table pillow screen_door stairway
river bridge bookcase blind coffee_table toilet flower book hill bench
countertop stove palm kitchen_island computer swivel_chair boat bar
arcade_machine hovel bus towel light truck tower chandelier awning
streetlight booth television_receiver airplane dirt_track apparel pole land
bannister escalator ottoman bottle buffet poster stage van ship fountain
conveyer_belt canopy washer plaything swimming_pool stool barrel basket
waterfall tent bag minibike cradle oven ball food step tank trade_name
microwave pot animal bicycle lake dishwasher screen blanket sculpture hood
sconce vase traffic_light tray ashcan fan pier crt_screen plate monitor
bulletin_board shower radiator glass clock flag
""".split())

# PASCAL-Context, the 59 most frequent classes; index 0 is background.
PASCAL_CONTEXT = ('background',) + tuple("""
aeroplane bag bed bedclothes bench bicycle bird boat book bottle building bus
cabinet car cat ceiling chair cloth computer cow cup curtain dog door fence
floor flower food grass ground horse keyboard light motorbike mountain mouse
person plate platform pottedplant road rock sheep shelves sidewalk sign sky
snow sofa table track train tree truck tvmonitor wall water window wood
""".split())

# The generated dataset (colorjax.datasets.semantic_shapes.CLASSES order).
SEMANTIC_SHAPES = ('sky', 'grass', 'ball', 'box', 'flower', 'bar', 'fish')
# Its scene types (version 2.0.0; semantic_shapes.SCENE_NAMES order).
SEMANTIC_SCENES = ('day', 'sunset', 'autumn')

assert len(VOC) == 21
assert len(COCO_STUFF) == 182, len(COCO_STUFF)
assert len(ADE20K) == 151, len(ADE20K)
assert len(PASCAL_CONTEXT) == 60, len(PASCAL_CONTEXT)
