"""Write the project's own detailed test shape (a torus with ridges on one half) into assets/.

python assets/make_test_shape.py            # -> assets/bumpy_torus.ply
"""

from pathlib import Path

from sape_geom.mesh.shapes import write_demo_shape

if __name__ == "__main__":
    print(write_demo_shape(Path(__file__).with_name("bumpy_torus.ply")))
