// cxx.cc — a C++ program on wasi-libc + libc++: iostreams, containers, algorithms,
// strings and file streams in /sandbox. Prints a summary the harness compares.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  std::vector<std::string> words{"wasm", "wasi", "tabbify", "sandbox", "capability"};
  std::sort(words.begin(), words.end());
  std::map<char, int> first;
  for (const auto &w : words) first[w[0]]++;
  {
    std::ofstream out("/sandbox/cxx.txt");
    for (const auto &w : words) out << w << '\n';
  }
  std::ifstream in("/sandbox/cxx.txt");
  std::string line, joined;
  int lines = 0;
  while (std::getline(in, line)) {
    joined += (lines++ ? "," : "") + line;
  }
  std::vector<int> v(100);
  std::iota(v.begin(), v.end(), 1);
  long sum = std::accumulate(v.begin(), v.end(), 0L);
  std::ostringstream os;
  os << "args=" << argc << " lines=" << lines << " words=" << joined << " sum=" << sum << " firsts=";
  for (const auto &[c, n] : first) os << c << n;
  std::cout << os.str() << std::endl;
  std::ifstream missing("/sandbox/../outside/secret.txt");
  std::cout << "outside readable: " << (missing.good() ? "yes" : "no") << std::endl;
  return lines == 5 && sum == 5050 ? 0 : 1;
}
