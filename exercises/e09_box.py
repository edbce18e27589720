"""Exercise 9: from the GraphCut's segmentation to a box, scored as the ILSVRC devkit scores it.

1. The largest 8-connected component of a bool mask (H, W), as a bool mask of the same shape (ties: the
   one whose first pixel comes first in raster order; an empty mask gives an all-False one). Hint:
   ``scipy.ndimage.label`` with a 3x3 structure of ones, then ``np.bincount``.
2. Its tight box (x0, y0, x1, y1) of ints, x1 and y1 exclusive, so that ``mask[y0:y1, x0:x1]`` holds it
   (the mask is not empty).
3. The devkit's IoU of two INCLUSIVE boxes (x1, y1 the last pixel, as in the ILSVRC annotations):
   intersection width iw = min(x1) - max(x0) + 1 (height likewise); 0 when iw or ih <= 0; else
   iw * ih / (area_a + area_b - iw * ih) with area = (x1 - x0 + 1) * (y1 - y0 + 1).

The answers: saliency/localise.py (largest_component, bounding_box), saliency/evaluation.py (devkit_iou).
"""


def largest_component(mask):
    raise NotImplementedError("exercise 9: largest_component(mask)")


def bounding_box(mask):
    raise NotImplementedError("exercise 9: bounding_box(mask)")


def devkit_iou(a, b):
    raise NotImplementedError("exercise 9: devkit_iou(a, b)")
