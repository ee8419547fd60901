"""Build the compiled kernels; everything else is declared in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP = ["-fopenmp"]
FLAGS = ["-O3"]

extensions = [
    Extension("tsnegrid.arrange.assign._kernels", ["src/tsnegrid/arrange/assign/_kernels.pyx"],
              extra_compile_args=FLAGS + OPENMP, extra_link_args=OPENMP),
    Extension("tsnegrid.arrange._kernels", ["src/tsnegrid/arrange/_kernels.pyx"],
              extra_compile_args=FLAGS),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
