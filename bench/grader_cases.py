r"""Labelled grading cases written for this project: (response, gold, verdict, kind).

`response` is what a model wrote (a whole solution or a bare answer), `gold` is the reference
(a bare answer, or a full solution with \boxed{} like MATH's ground_truth), `verdict` is what a
careful human grader says. Used by bench/grader_bench.py and tests/test_grader.py (here, so that bench/
depends on w2s/ only).
Many False cases are ones popular graders get wrong: different tuples, a dropped \pm, nearby
factorials, a lost factor, other interval brackets, equations with other constants.
"""

# The answer has to be found in the response first.
EXTRACTION = [
    (r"So the sum is $12$. Thus the answer is \boxed{12}.", "12", True),
    (r"We get \boxed{\frac{1}{2}} after simplifying.", r"\frac12", True),
    (r"First \boxed{3}, but rechecking, the final value is \boxed{4}.", "4", True),
    (r"First \boxed{3}, but rechecking, the final value is \boxed{4}.", "3", False),
    (r"The area is \boxed{\sqrt{\frac{3}{4}}}", r"\frac{\sqrt{3}}{2}", True),
    (r"Hence $\boxed 5$.", "5", True),
    (r"Therefore the answer is \fbox{7}.", "7", True),
    (r"The result is \boxed{\frac{1}{2", r"\frac{1}{2}", False),  # generation cut off mid-box
    (r"Thus \boxed{", "1", False),
    (r"Adding them up gives 42. The answer is 42.", "42", True),
    (r"Adding them up gives 42. The answer is $\frac{3}{4}$.", r"\frac34", True),
    ("so the final answer is: 18", "18", True),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72", True),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "24", False),
    (r"The slope is $m = \frac{2}{3}$", r"\frac{2}{3}", True),
    (r"Working: \(x^2 = 9\), so \(x = 3\)", "3", True),
    ("She has 3 apples and buys 5 more, so 8 apples in total", "8", True),
    ("0.5", r"\frac{1}{2}", True),
    (r"$\frac12$", "0.5", True),
    (r"\frac{1}{2}", "0.5", True),
    ("I could not solve this problem.", "3", False),
    ("", "3", False),
    (r"The answer is \boxed{10}", r"Since $5 \cdot 2 = 10$, the total is $\boxed{10}$.", True),
    (r"The answer is \boxed{12}", r"Since $5 \cdot 2 = 10$, the total is $\boxed{10}$.", False),
    (r"\boxed{\text{(C)}}", "C", True),
    (r"The correct option is (B).", "C", False),
    ("Thus the final answer is: boxed{\\frac{1}{2}}", "0.5", True),  # the backslash dropped
    ("Thus the final answer is: boxed{\\frac{1}{2}}", "1", False),
    (r"\boxed{\text{The answer is } 5}", "5", True),  # the words written inside the box
    (r"\boxed{\text{Answer: } 12}", "12", True),
    (r"\boxed{\text{Answer: } 12}", "1", False),
    (r"\boxed{\approx 3.14}", "3.14", True),
    (r"\boxed{\approx 3.14}", r"\pi", False),
]

# Integers, decimals, fractions, scientific notation: exact unless a decimal is involved.
NUMBERS = [
    (r"\boxed{3}", "3", True),
    (r"\boxed{-7}", "-7", True),
    (r"\boxed{3.0}", "3", True),
    (r"\boxed{0.25}", r"\frac{1}{4}", True),
    (r"\boxed{\frac{2}{4}}", r"\frac{1}{2}", True),
    (r"\boxed{-\frac{3}{4}}", "-0.75", True),
    (r"\boxed{\frac{-3}{4}}", r"-\frac{3}{4}", True),
    (r"\boxed{.5}", "0.5", True),
    (r"\boxed{1.5\times 10^{3}}", "1500", True),
    (r"\boxed{2.5e-3}", "0.0025", True),
    (r"\boxed{0.3333333}", r"\frac{1}{3}", True),
    (r"\boxed{0.333}", r"\frac{1}{3}", False),
    (r"\boxed{0.67}", r"\frac{2}{3}", False),
    (r"\boxed{3}", "4", False),
    (r"\boxed{-3}", "3", False),
    (r"\boxed{123456789013}", "123456789012", False),
    (r"\boxed{100}", "1000", False),
    (r"\boxed{\frac{3}{7}}", r"\frac{7}{3}", False),
    (r"\boxed{7/3}", r"\frac{7}{3}", True),
    (r"\boxed{12}", "12.00", True),
    (r"\boxed{1/3}", r"\frac{2}{6}", True),
    (r"\boxed{0.\overline{3}}", r"\frac{1}{3}", True),
    (r"\boxed{0.1\overline{6}}", r"\frac{1}{6}", True),
    (r"\boxed{0.\overline{3}}", "0.333", False),
    (r"\boxed{2\frac{1}{2}}", "2.5", True),
]

# Formatting that never changes the value.
FORMATTING = [
    (r"\boxed{\dfrac{5}{8}}", r"\frac{5}{8}", True),
    (r"\boxed{\tfrac{5}{8}}", r"\frac58", True),
    (r"\boxed{\left(\frac{1}{2}\right)}", r"\frac{1}{2}", True),
    (r"\boxed{12\text{ cm}}", "12", True),
    (r"\boxed{12 \text{ square units}}", "12", True),
    (r"\boxed{30^\circ}", "30", True),
    (r"\boxed{30^{\circ}}", r"30^\circ", True),
    (r"\boxed{45 \text{ degrees}}", "45", True),
    (r"\boxed{25\%}", "25", True),
    (r"\boxed{\$1,\!200}", "1200", True),
    (r"\boxed{1{,}000{,}000}", "1000000", True),
    (r"\boxed{10,000}", r"10000", True),
    (r"\boxed{5.}", "5", True),
    (r"\boxed{x = 4}", "4", True),
    (r"\boxed{y=-\frac{1}{2}}", r"-\frac12", True),
    (r"\boxed{\mathrm{6}}", "6", True),
    (r"\boxed{\displaystyle \frac{\pi}{4}}", r"\frac{\pi}{4}", True),
    (r"\boxed{\sqrt2}", r"\sqrt{2}", True),
    (r"\boxed{4 \text{ m}}", "4", True),
    (r"\boxed{\frac{1}{4}\text{ of the pie}}", "0.25", True),
    (r"\boxed{12\text{ cm}}", "13", False),
    (r"\boxed{25\%}", "26", False),
    (r"\boxed{x = 4}", "-4", False),
    (r"\boxed{30^\circ}", "60", False),
    (r"\boxed{5^{\text{th}}}", "5", True),  # ordinals
    (r"\boxed{21^\text{st}}", "21", True),
    (r"\boxed{21^\text{st}}", "20", False),
    (r"\boxed{4\text{ km/h}}", "4", True),
    (r"\boxed{\text{3 apples}}", "3", True),
    (r"\boxed{\text{3 apples}}", "4", False),
    (r"\boxed{2 xyz}", "2", False),  # a product, not a count
    ("it is not 20, it is 2,500.75€", "2500.75", True),  # a currency sign or a unit glued on
    ("it is not 20, it is 2,500.75€", "20", False),
    ("the floor is 30 by 80, that is 2,400m²", "2400", True),
    (r"\boxed{12cm}", "12", True),
    (r"\boxed{4ft}", "5", False),
    (r"\boxed{12 \text{ ways}}", "12", True),
    (r"\boxed{27 \text{ cubic feet}}", "27", True),
    (r"\boxed{2\text{ hours}}", "120", False),  # a unit is dropped, never converted
    (r"\boxed{25 \text{ cents}}", "0.25", False),
    (r"\boxed{1 \text{ million}}", "1", False),
    ("The answer is twelve.", "12", True),  # a number written as a word
    (r"\boxed{\text{Twelve}}", "12", True),
    (r"\boxed{\text{Twelve}}", "13", False),
    ("The answer is none.", "1", False),
]

# Expressions sympy has to decide.
SYMBOLIC = [
    (r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", True),
    (r"\boxed{2\sqrt{3}}", r"\sqrt{12}", True),
    (r"\boxed{\frac{\pi}{2}}", r"\pi/2", True),
    (r"\boxed{2\pi}", r"\pi \cdot 2", True),
    (r"\boxed{x^2+2x+1}", "(x+1)^2", True),
    (r"\boxed{(x-2)(x+2)}", "x^2-4", True),
    (r"\boxed{\frac{x}{2}}", r"0.5x", True),
    (r"\boxed{1+\sqrt{2}}", r"\sqrt{3+2\sqrt{2}}", True),
    (r"\boxed{\sqrt[3]{8}}", "2", True),
    (r"\boxed{2^{10}}", "1024", True),
    (r"\boxed{\binom{5}{2}}", "10", True),
    (r"\boxed{5!}", "120", True),
    (r"\boxed{{10 \choose 3}}", "120", True),
    (r"\boxed{{10 \choose 3}}", "720", False),
    (r"\boxed{√2/2}", r"\frac{\sqrt{2}}{2}", True),
    (r"\boxed{2π}", r"2\pi", True),
    (r"\boxed{\log_2 8}", "3", True),
    (r"\boxed{e^{i\pi}}", "-1", True),
    (r"\boxed{\sin^2 x + \cos^2 x}", "1", True),
    (r"\boxed{3 + 4i}", "4i + 3", True),
    (r"\boxed{1.41421356}", r"\sqrt{2}", True),
    (r"\boxed{\frac{3\sqrt{5}}{5}}", r"\frac{3}{\sqrt{5}}", True),
    (r"\boxed{a+b}", "b+a", True),
    (r"\boxed{0.3333333x}", r"\frac{x}{3}", True),
    (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{2}}{2}", False),
    (r"\boxed{2\pi}", r"\pi", False),
    (r"\boxed{x^2+2x+1}", "(x-1)^2", False),
    (r"\boxed{\sqrt{3}}", "1.73", False),
    (r"\boxed{2^{10}}", "1000", False),
    (r"\boxed{a-b}", "b-a", False),
    (r"\boxed{3-4i}", "3+4i", False),
    (r"\boxed{\frac{\pi}{3}}", r"\frac{\pi}{6}", False),
    (r"\boxed{\log_2 9}", "3", False),
    (r"\boxed{6!}", "120", False),
    (r"\boxed{0.33x}", r"\frac{x}{3}", False),
    (r"\boxed{i\sqrt{2}}", r"\sqrt{-2}", True),
    (r"\boxed{2e^{i\pi/3}}", r"1+\sqrt{3}i", True),
    (r"\boxed{-1+i\sqrt{3}}", r"-1-i\sqrt3", False),
    (r"\boxed{3y(4y^2-2y+1)}", "3*y*(4*y**2 - 2*y + 1)", True),
    (r"\boxed{5(y+2)(y-2)}", "5*(y - 2)*(y + 2)", True),
    (r"\boxed{\csc^2 t}", r"\cot^2 t + 1", True),
    (r"\boxed{6.67 \times 10^{-11}}", "6.67e-11", True),
    (r"\boxed{1.6 \times 10^{-19}}", r"1.6 \times 10^{-18}", False),
    (r"\boxed{\sqrt{x^2+1}}", "x+1", False),
]

# Ordered tuples and points: order and every entry matter.
TUPLES = [
    (r"\boxed{(1, 2)}", "(1,2)", True),
    (r"\boxed{(1, 2)}", "(2,1)", False),
    (r"\boxed{\left(\frac{1}{2}, 3\right)}", "(0.5, 3)", True),
    (r"\boxed{(3, -1, 2)}", "(3,-1,2)", True),
    (r"\boxed{(3, -1, 2)}", "(3,1,-2)", False),
    (r"\boxed{(1, 2, 3)}", "(1,2)", False),
    (r"\boxed{(\sqrt{2}, \pi)}", r"(\sqrt2,\pi)", True),
    (r"\boxed{(2, 4)}", "(2, 5)", False),
    (r"\boxed{(-1, 0)}", "(0, -1)", False),
    (r"\boxed{(x+1, 2)}", "(1+x, 2)", True),
    (r"\boxed{x=2, y=3}", "(2,3)", True),  # named values, in the order of their names
    (r"\boxed{y=3, x=2}", "(2,3)", True),
    (r"\boxed{x=3, y=2}", "(2,3)", False),
    (r"\boxed{x=2, x=3}", "(2,3)", False),
    (r"\boxed{x=2, y=3}", "[2,3]", False),  # an interval has no named ends
    (r"\boxed{a=1, b=-2, c=5}", "(1,-2,5)", True),
    (r"\boxed{a=1, b=-2, c=5}", "(1,5,-2)", False),
    (r"\boxed{2, 3}", "(2,3)", False),
]

# Intervals: the bracket types are part of the answer.
INTERVALS = [
    (r"\boxed{[2, 5)}", "[2,5)", True),
    (r"\boxed{(2, 5)}", "[2,5)", False),
    (r"\boxed{[2, 5]}", "[2,5)", False),
    (r"\boxed{(2, 5]}", "[2,5)", False),
    (r"\boxed{(-\infty, 3]}", r"(-\infty,3]", True),
    (r"\boxed{(-\infty, 3)}", r"(-\infty,3]", False),
    (r"\boxed{\left[\frac{1}{2}, 4\right)}", "[0.5, 4)", True),
    (r"\boxed{(-\infty, -2) \cup (3, \infty)}", r"(-\infty,-2)\cup(3,\infty)", True),
    (r"\boxed{(3, \infty) \cup (-\infty, -2)}", r"(-\infty,-2)\cup(3,\infty)", True),
    (r"\boxed{(-\infty, -2] \cup (3, \infty)}", r"(-\infty,-2)\cup(3,\infty)", False),
    (r"\boxed{(-\infty, -2) \cup (4, \infty)}", r"(-\infty,-2)\cup(3,\infty)", False),
    (r"\boxed{x \in [1, 4]}", "[1,4]", True),
    (r"\boxed{(-inf, 2) U (3, inf)}", r"(-\infty,2)\cup(3,\infty)", True),  # plain-text and Unicode unions
    (r"\boxed{(-inf, 2) U (3, inf)}", r"(-\infty,2]\cup(3,\infty)", False),
    ("\\boxed{(-∞, 2) ∪ (3, ∞)}", r"(-\infty,2)\cup(3,\infty)", True),
    (r"\boxed{[0, \infty)}", r"[0, +\infty)", True),
    (r"\boxed{x < 3}", r"(-\infty, 3)", True),
    (r"\boxed{x \le 3}", r"(-\infty, 3)", False),
    (r"\boxed{-2 < x \leq 5}", r"(-2, 5]", True),
    (r"\boxed{x > 1}", r"[1, \infty)", False),
    (r"\boxed{(-\infty, 3)}", r"x < 3", True),
    (r"\boxed{1 < x < 3}", "3 > x > 1", True),
    (r"\boxed{1 < x < 3}", r"3 > x \geq 1", False),
    (r"\boxed{x \in [1,3)}", r"1 \le x < 3", True),
    (r"\boxed{1 \le x < 3}", "(1, 3]", False),
    (r"\boxed{x \leq -\frac{1}{2}}", r"(-\infty, -\frac12)", False),
]

# Sets: order-free, every element must match.
SETS = [
    (r"\boxed{\{1, 2, 3\}}", r"\{3,2,1\}", True),
    (r"\boxed{\{1, 2\}}", r"\{1,2,3\}", False),
    (r"\boxed{\{1, 2, 4\}}", r"\{1,2,3\}", False),
    (r"\boxed{\{-1, \frac{1}{2}\}}", r"\{0.5,-1\}", True),
    (r"\boxed{\{\sqrt{2}, -\sqrt{2}\}}", r"\{-\sqrt2,\sqrt2\}", True),
    (r"\boxed{\emptyset}", r"\varnothing", True),
    (r"\boxed{\emptyset}", r"\{\}", True),
    (r"\boxed{\emptyset}", "0", False),
    (r"\boxed{(-\infty, \infty)}", r"\mathbb{R}", True),
    (r"\boxed{(0, \infty)}", r"\mathbb{R}", False),
    (r"\boxed{\text{all real numbers}}", r"(-\infty,\infty)", True),
    (r"\boxed{\text{all real numbers}}", r"(0,\infty)", False),
    (r"\boxed{\langle 1, -2, 3 \rangle}", "(1, -2, 3)", True),
    (r"\boxed{\langle 1, -2, 3 \rangle}", "(1, 2, 3)", False),
    (r"\boxed{\{1, 3\}}", "(1, 3)", False),
    (r"\boxed{\{1,3\} \cup \{2,4\}}", r"\{1,2,3,4\}", True),  # a union of finite sets is one set
    (r"\boxed{\{1,3\} \cup \{2,5\}}", r"\{1,2,3,4\}", False),
]

# Several answers ("all solutions"): order-free.
LISTS = [
    (r"\boxed{1, -2}", "-2, 1", True),
    (r"\boxed{1, -2}", "1, -3", False),
    (r"\boxed{1, -2}", "1", False),
    (r"\boxed{1}", "1, -2", False),
    (r"\boxed{3, 5, 7}", "7,5,3", True),
    (r"\boxed{3, 5, 7}", "3,5", False),
    (r"\boxed{x = 2 \text{ or } x = -5}", "-5, 2", True),
    (r"\boxed{x=2, x=-5}", "2,-5", True),
    (r"\boxed{\frac{1}{2}, 2}", "2, 0.5", True),
    (r"\boxed{1, 1, 2}", "1, 2, 2", False),
    (r"\boxed{2, -5}", "2, 5", False),
    (r"\boxed{-1, 3, 8}", "8, -1, 3", True),  # one side in increasing order: all the solutions, any order
    (r"\boxed{8, -1, 3}", "3, 8, -1", False),  # neither: answers in a given order (parts a, b, c)
    (r"\boxed{0.5, 6, 2}", "6, .5, 2", False),
    (r"\boxed{0.5, 6, 2}", "0.5, 6, 2", True),
    (r"\boxed{\{8, -1, 3\}}", "3, 8, -1", True),  # a set is never ordered
]

# Matrices and vectors.
MATRICES = [
    (r"\boxed{\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}}", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", True),
    (r"\boxed{\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}}", r"\begin{pmatrix}1&3\\2&4\end{pmatrix}", False),
    (r"\boxed{\begin{bmatrix} \frac{1}{2} & 0 \\ 0 & 1 \end{bmatrix}}", r"\begin{pmatrix}0.5&0\\0&1\end{pmatrix}", True),
    (r"\boxed{\begin{pmatrix} 1 \\ -2 \\ 3 \end{pmatrix}}", r"\begin{pmatrix}1\\-2\\3\end{pmatrix}", True),
    (r"\boxed{\begin{pmatrix} 1 \\ -2 \\ 3 \end{pmatrix}}", r"\begin{pmatrix}1\\2\\3\end{pmatrix}", False),
    (r"\boxed{(1, -2, 3)}", r"\begin{pmatrix}1\\-2\\3\end{pmatrix}", True),
    (r"\boxed{(1, -2)}", r"\begin{pmatrix}1\\-2\\3\end{pmatrix}", False),
    (r"\boxed{\begin{pmatrix} 1 & 2 \end{pmatrix}}", r"\begin{pmatrix}1\\2\end{pmatrix}", False),
    (r"\boxed{\begin{pmatrix} \sqrt{4} \\ 1 \end{pmatrix}}", r"\begin{pmatrix}2\\1\end{pmatrix}", True),
    # A row break right before \end (three backslashes) is not a JSON-doubled \end.
    (r"\boxed{\begin{pmatrix} 5 & 6 \\ 7 & 8 \end{pmatrix}}", r"(\begin{pmatrix}5&6\\7&8\\\end{pmatrix})", True),
    (r"\boxed{\begin{pmatrix} 5 & 6 \\ 7 & 9 \end{pmatrix}}", r"(\begin{pmatrix}5&6\\7&8\\\end{pmatrix})", False),
    (r"\boxed{\begin{pmatrix} -10 \\ 6 \end{pmatrix}}", r"\begin{pmatrix}-10\\6\end{pmatrix}", True),
    (r"\boxed{\begin{pmatrix} 0 \\ 0 \end{pmatrix}}", "0", False),
    (r"\boxed{\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}}", "I", False),
]

# Equations: same solution set; the constants matter.
EQUATIONS = [
    (r"\boxed{x + 2y = 3}", "2y + x = 3", True),
    (r"\boxed{2x + 4y = 6}", "x + 2y = 3", True),
    (r"\boxed{x + 2y = 3}", "x + 2y = 4", False),
    (r"\boxed{x + 2y = 3}", "2x + y = 3", False),
    (r"\boxed{y = 2x + 1}", "y - 2x = 1", True),
    (r"\boxed{y = 2x + 1}", "y = 2x - 1", False),
    (r"\boxed{y = 2x + 1}", "2x + 1", True),
    (r"\boxed{x = 5}", "5", True),
    (r"\boxed{5}", "x = 5", True),
    (r"\boxed{x = 5}", "6", False),
    (r"\boxed{x^2 + y^2 = 25}", "y^2 + x^2 = 25", True),
    (r"\boxed{x^2 + y^2 = 25}", "x^2 + y^2 = 5", False),
    (r"\boxed{3x - 2y + z = 7}", "z + 3x - 2y - 7 = 0", True),
    (r"\boxed{3x - 2y + z = 7}", "3x - 2y + z = -7", False),
]

# \pm answers stand for two values.
PLUS_MINUS = [
    (r"\boxed{\pm 2021}", "2021", False),
    (r"\boxed{2021}", r"\pm 2021", False),
    (r"\boxed{\pm 3}", "3, -3", True),
    (r"\boxed{x = \pm 3}", r"\pm 3", True),
    (r"\boxed{1 \pm \sqrt{2}}", r"1+\sqrt{2}, 1-\sqrt{2}", True),
    (r"\boxed{1 \pm \sqrt{2}}", r"1+\sqrt{2}", False),
    (r"\boxed{1 \pm \sqrt{3}}", r"1 \pm \sqrt{2}", False),
    (r"\boxed{-3, 3}", r"\pm 3", True),
]

# Infinity.
INFINITY = [
    (r"\boxed{\infty}", r"\infty", True),
    (r"\boxed{+\infty}", r"\infty", True),
    (r"\boxed{-\infty}", r"\infty", False),
    (r"\boxed{\infty}", "1000000", False),
    (r"\boxed{(0, inf)}", r"(0,\infty)", True),
    (r"\boxed{[1, infinity)}", r"[1,\infty)", True),
    (r"\boxed{[1, infinity)}", r"(1,\infty)", False),
]

# Multiple choice and words.
CHOICES_AND_TEXT = [
    (r"\boxed{C}", "C", True),
    (r"\boxed{(C)}", "C", True),
    (r"\boxed{C}", "D", False),
    (r"\boxed{\text{(A)}}", "(A)", True),
    (r"\boxed{(C) 12}", "C", True),
    (r"\boxed{ABD}", "ABD", True),
    (r"\boxed{BD}", "ABD", False),
    (r"\boxed{\text{Evelyn}}", r"\text{Evelyn}", True),
    (r"\boxed{\text{Evelyn}}", r"\text{Evelny}", False),
    (r"\boxed{\text{odd}}", r"\text{even}", False),
    (r"\boxed{\text{odd}}", r"\text{odd}", True),
    (r"\boxed{\text{Sunday}}", "Sunday", True),
    (r"\boxed{\text{(A), (C)}}", "A, C", True),
    (r"\boxed{\text{(A), (C)}}", "A", False),
    (r"\boxed{B}", "(B) 14", True),  # a gold that gives the option's value too
    (r"\boxed{14}", "(B) 14", True),
    (r"\boxed{(B) 14}", "(B) 14", True),
    (r"\boxed{(C) 14}", "(B) 14", False),
    (r"\boxed{C}", "(B) 14", False),
    (r"\boxed{15}", "(B) 14", False),
]

# Traps: pairs that look alike, which popular graders accept.
TRAPS = [
    (r"\boxed{\frac{1}{2004!}}", r"\frac{1}{2006!}", False),
    (r"\boxed{4\sqrt{2}}", "4", False),
    (r"\boxed{4}", r"4\sqrt{2}", False),
    (r"\boxed{2\sqrt2}", "2", False),
    (r"\boxed{10^{-10}}", "0", False),
    (r"\boxed{1+}", "1", False),
    (r"\boxed{\frac{1}{2} x}", r"\frac{1}{2}", False),
    (r"\boxed{3x}", "3", False),
    (r"\boxed{2^{100}}", "2^{101}", False),
    (r"\boxed{2^{100}+1}", "2^{100}", False),
    (r"\boxed{1.001}", "1", False),
    (r"\boxed{\frac{999}{1000}}", "1", False),
    (r"\boxed{(1,2)}", "[1,2]", False),
    (r"\boxed{12}", "12\\%", True),
    (r"\boxed{\sqrt{2}}", "2", False),
    (r"\boxed{\pi}", "3.14", False),
    (r"\boxed{\frac{22}{7}}", r"\pi", False),
    (r"\boxed{6}", r"\{6\}", True),
    (r"\boxed{10}", "1,0", False),
    (r"\boxed{y = x}", "y = -x", False),
]

# Broken input: never an exception, never a match.
MALFORMED = [
    (r"\boxed{\frac{1}{}}", "1", False),
    (r"\boxed{\sqrt{}}", "0", False),
    (r"\boxed{((}", "1", False),
    (r"\boxed{\unknowncommand{3}}", "3", False),
    (r"\boxed{3 +* 4}", "7", False),
    (r"\boxed{\frac{1}{0}}", "0", False),
    (r"\boxed{\frac{1}{0}}", r"\frac{2}{0}", False),
    (r"\boxed{^^}", "1", False),
]

# Real weak-model replies: the four ways the grader went wrong on them.
REAL_OUTPUT = [
    ("The pen costs $3 and the book costs $5, so the total is $8.", "8", True),  # prices in prose
    ("The pen costs $3 and the book costs $5, so the total is $8.", "5", False),
    ("He earns $15/hour * 8 hours = $120.", "120", True),
    ("He earns $15/hour * 8 hours = $120.", "15", False),
    ("So she has $1,250.50 left.", "1250.5", True),
    ("Each ticket costs $12. So 4 tickets cost 4 * $12 = $48.", "12", False),
    (r"The cost is 70 dollars. The answer is: $\$70$", "70", True),
    (r"The cost is 70 dollars. The answer is: $\$70$", "7", False),
    ("He spent $70 in all and there are 7 teachers, so he spent $70/7=$10 per teacher.\nEach gift cost $10.", "10",
     True),
    ("He spent $70 in all and there are 7 teachers, so he spent $70/7=$10 per teacher.\nEach gift cost $10.", "70",
     False),
    ("She sold 48 clips in April and half as many in May, so in May she sold 48 / 2 = ", "24", False),
    ("First we find the total: 16 - 3 - 4 = 9 eggs. Then she sells them at $2 each, so", "18", False),
    ("She has 5 apples.\n" * 8, "5", False),
    ("Let x be the number. Then x + 3 = 8, so x = 5.\nLet x be the number. Then x + 3 = 8, so x = 5.\n" * 4, "5",
     False),
    (r"So the average is \boxed{\frac{272}{5} = 54.4}", "54.4", True),
    (r"So the average is \boxed{\frac{272}{5} = 54.4}", "54", False),
    (r"\boxed{x = 5+5+1 = 7 = 11}", "11", True),
    (r"\boxed{x = 5+5+1 = 7 = 11}", "7", False),
    ("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18 dollars.\nSo she makes 18 dollars every day.", "18",
     True),
]

# Answers written as relations.
RELATIONS = [
    (r"\boxed{x >= 3}", r"x \geq 3", True),
    (r"\boxed{x \ge 3}", r"x \geq 3", True),
    (r"\boxed{x \geqslant 3}", "x >= 3", True),
    (r"\boxed{x >= 3}", r"x > 3", False),
    (r"\boxed{x <= -1}", r"x \leq -1", True),
    (r"\boxed{x <= -1}", r"x \leq 1", False),
    (r"\boxed{x != 2}", r"x \neq 2", True),
    (r"\boxed{x \ne 2}", r"x \neq 3", False),
    (r"\boxed{x \lt 5}", "x < 5", True),
    (r"\boxed{x \gt 5}", "x > 5", True),
    (r"\boxed{x \gt 5}", "x < 5", False),
    (r"\boxed{-x \geq -1}", r"x \leq 1", True),
    (r"\boxed{-x \geq -1}", r"x \geq 1", False),
    (r"\boxed{2x < 6}", "x < 3", True),
    (r"\boxed{x \geq 1}", r"[1, \infty)", True),
    (r"\boxed{x > 1}", r"[1, \infty)", False),
    (r"\boxed{1 \leq x}", r"[1, \infty)", True),
    (r"\boxed{5 > x}", r"(-\infty, 5)", True),
    (r"\boxed{5 \geq x}", r"(-\infty, 5)", False),
    (r"\boxed{x < -2 \text{ or } x > 3}", r"(-\infty,-2)\cup(3,\infty)", True),
    (r"\boxed{x < -2 \text{ or } x \geq 3}", r"(-\infty,-2)\cup(3,\infty)", False),
    (r"\boxed{x \neq 2}", r"(-\infty, 2) \cup (2, \infty)", True),
]

# Answers with a name in front: the value is the answer.
LABELLED = [
    (r"\boxed{(p,q)=(3,2)}", "(3,2)", True),
    (r"\boxed{(p,q)=(3,2)}", "(2,3)", False),
    (r"\boxed{AB=4, CD=5}", "4, 5", True),
    (r"\boxed{AB=4, CD=5}", "4, 6", False),
    (r"\boxed{V_1:V_2=11:21}", "11:21", True),
    (r"\boxed{V_1:V_2=11:21}", "21:11", False),
    (r"\boxed{\frac{NO}{BO}=\frac{1}{\sqrt6}}", r"\frac{\sqrt{6}}{6}", True),
    (r"\boxed{\frac{NO}{BO}=\frac{1}{\sqrt6}}", r"\frac{\sqrt{6}}{3}", False),
    (r"\boxed{f(x) = 2x+3}", "y = 2x+3", True),
    (r"\boxed{f(x) = 2x+3}", "y = 2x-3", False),
    (r"\boxed{x = 3}", "y = 3", False),
    (r"\boxed{m\angle ABC = 40}", "40", True),
    (r"\boxed{\frac{AE}{EC}=\frac{2}{3}}", r"\frac23", True),
    (r"\boxed{\frac{AE}{EC}=\frac{2}{3}}", r"\frac32", False),
    (r"\boxed{BD=6,DC=8}", "8,6", True),
    (r"\boxed{(a, b, c) = (1, 2, 3)}", "(1,3,2)", False),
    (r"\boxed{m\angle C = 110^\circ}", "110", True),
    (r"\boxed{2x + 4y = 6}", "6", True),  # "find 2x + 4y": the gold is a number, not a line
    (r"\boxed{2x + 4y = 6}", "x + 2y = 3", True),
    (r"\boxed{6}", "2x + 4y = 6", False),  # the gold is an equation: a number is not one
    (r"\boxed{2x = 6}", "6", False),  # one unknown: an equation still to solve
    (r"\boxed{x + 1 = 6}", "6", False),
    ("We find $a = 2$ and $b = 3$, so $a + b = 5$.", "5", True),
    ("We find $a = 2$ and $b = 3$, so $a + b = 5$.", "3", False),
    (r"\boxed{f(3) = 10}", "10", True),  # a function at a point is a name too
    (r"\boxed{f(3) = 10}", "3", False),
    (r"\boxed{g(-1) = \frac{1}{2}}", "0.5", True),
    (r"\boxed{P(A) = \frac{1}{3}}", r"\frac13", True),
    (r"\boxed{P(A) = \frac{1}{3}}", r"\frac23", False),
    (r"\boxed{q(x) = 2x^2 + 1}", "2x^2+1", True),
    (r"\boxed{q(x) = 2x^2 + 1}", "2x^2-1", False),
    (r"\boxed{S_{10} = 55}", "55", True),
    (r"\boxed{a_n = 2n+1}", "2n+1", True),
]

# Several answers: sets, tuples in any order, other separators.
COLLECTIONS = [
    (r"\boxed{\{(1,2),(3,4)\}}", "(3,4),(1,2)", True),
    (r"\boxed{(3,4),(1,2)}", r"\{(1,2),(3,4)\}", True),
    (r"\boxed{(3,4),(2,1)}", r"\{(1,2),(3,4)\}", False),
    (r"\boxed{(1,2); (3,4)}", "(3,4), (1,2)", True),
    (r"\boxed{1; 2; 3}", "3, 2, 1", True),
    (r"\boxed{1; 2}", "1, 2, 3", False),
    (r"The solutions are $x=1$ or $x=2$.", "1, 2", True),
    (r"\boxed{1 \text{ or } 2}", "2, 1", True),
    (r"\boxed{1 \text{ or } 2}", "2", False),
    (r"\boxed{\{1, 2, 3\}}", "1, 2, 3", True),
    (r"\boxed{1, 2, 3}", r"\{1, 2\}", False),
    (r"\boxed{{1, 2, 3}}", r"\{3, 2, 1\}", True),
    (r"\boxed{{1, 2}}", r"\{1, 2, 3\}", False),
    (r"\boxed{\{(1,2)\}}", "(1,2)", True),
]

# How numbers are written.
NUMBER_FORMATS = [
    (r"\boxed{1000,99}", "1000.99", True),
    (r"\boxed{0,111}", "0.111", True),
    (r"\boxed{0,111}", "111", False),
    (r"\boxed{1,000}", "1000", True),
    (r"\boxed{1,000}", "1", False),
    (r"\boxed{12,5}", "12.5", False),  # one digit after the comma: a list of two, as MATH writes them
    (r"\boxed{12,50}", "12.5", True),
    (r"\boxed{2,74}", "2.74", True),
    (r"\boxed{1,2}", "1.2", False),
    (r"\boxed{0,5}", "0.5", False),
    (r"\boxed{2, 74}", "2.74", False),
    (r"\boxed{45,\! 678}", "45678", True),
    (r"\boxed{45, 678}", "45678", False),
    (r"\boxed{12 345}", "12345", True),
    (r"\boxed{1\,000\,000}", "1000000", True),
    (r"\boxed{−3}", "-3", True),  # a Unicode minus
    (r"\boxed{3 × 10^{4}}", "30000", True),
    (r"\boxed{1,2}", "1, 2", True),
    (r"\boxed{1 1/2}", r"\frac{3}{2}", True),
    (r"\boxed{1 1/2}", "1.2", False),
    (r"\boxed{7 5/5}", "8", False),  # not a mixed number anyone writes
    (r"\boxed{7 9/5}", "44/5", False),
    ("The answer is 3 2/5.", "17/5", True),
    ("The answer is 3 2/5.", "3", False),
    (r"\boxed{2\frac{3}{4}}", "2.75", True),
    (r"\boxed{4210_{7}}", "4210_7", True),
    (r"\boxed{4210_{7}}", "4210_8", False),
    (r"\boxed{1011}", "1011_2", True),  # the base left off: the same digits
    (r"\boxed{1011_{2}}", "1011", True),
    (r"\boxed{2A_{16}}", "2A_{16}", True),
    (r"\boxed{2A_{16}}", "2A_16", True),
    (r"\boxed{2A_{16}}", "2B_16", False),
    (r"\boxed{11}", "1011_2", False),  # its value in base 10 is not what was asked
    (r"\boxed{1011_3}", "1011_2", False),
    (r"\boxed{20:34}", "20:34:00", True),
    (r"\boxed{20:34}", "20:35", False),
]

# Numeric tolerance: both sides of each rule in the policy (w2s/grader/equivalence.py, scalars).
TOLERANCE = [
    (r"\boxed{125.663}", r"40\pi", True),  # 6 digits, within one unit of the last
    (r"\boxed{125.66}", r"40\pi", True),  # 5 digits
    (r"\boxed{125.7}", r"40\pi", False),  # 4 digits: a different number as far as we can tell
    (r"\boxed{125.665}", r"40\pi", False),  # 6 digits but off by more than one unit
    (r"\boxed{1.0001}", "1", False),
    (r"\boxed{1.00001}", "1", False),
    (r"\boxed{1.00000}", "1", True),
    (r"\boxed{0.99999}", "1", False),
    (r"\boxed{3.14159}", r"\pi", True),
    (r"\boxed{3.1416}", r"\pi", True),
    (r"\boxed{3.142}", r"\pi", False),
    (r"\boxed{0.33333}", r"\frac{1}{3}", True),
    (r"\boxed{0.3333}", r"\frac{1}{3}", False),
    (r"\boxed{25\%}", "0.25", True),
    (r"\boxed{25\%}", r"\frac{1}{4}", True),
    (r"\boxed{0.25}", r"25\%", True),
    (r"\boxed{25}", "0.25", False),
    (r"\boxed{25\%}", "0.26", False),
    (r"\boxed{25 \text{ percent}}", "25", True),
    (r"\boxed{25 pct}", "0.25", True),
    (r"\boxed{25 percentage}", "26", False),
    (r"$\boxed{28}\%$", "0.28", True),  # the sign written after the box
    (r"$\boxed{28}$ percent", "0.28", True),
    (r"$\boxed{28}\%$", "0.29", False),
]

# Final answers stated in prose, with no box.
PROSE = [
    ("Final Answer: The largest $n$ is 34.", "34", True),
    ("Final Answer: The largest $n$ is 34.", "n", False),
    (r"We compute the sum step by step. Therefore, the value of $x$ is $\frac{5}{2}$.", "2.5", True),
    (r"We compute the sum step by step. Therefore, the value of $x$ is $\frac{5}{2}$.", "x", False),
    ("Adding the two parts, the total is 48 + 24 = 72. So Natalia sold 72 clips.", "72", True),
    ("Adding the two parts, the total is 48 + 24 = 72. So Natalia sold 72 clips.", "24", False),
    (r"Thus the area of the triangle is $\frac{1}{2} \cdot 6 \cdot 4 = 12$.", "12", True),
    ("The roots are $2$ and $-3$.", "-3, 2", True),
    ("The roots are $2$ and $-3$.", "2", False),
    ("Answer: 42", "42", True),
    ("The answer is $\\frac{1}{2}$ because half the marbles are red.", r"\frac12", True),
    ("The answer is $\\frac{1}{2}$ because half the marbles are red.", "2", False),
    ("Final Answer: The final answer is $\\$18$. I hope it is correct.", "18", True),
    ("Final Answer: The final answer is $(2,3)$. I hope it is correct.", "(3,2)", False),
    ("The number of ways is $\\binom{5}{2} = 10$.", "10", True),
    ("Therefore the perimeter is $4 \\cdot 6 = 24$ cm.", "24", True),
    ("Therefore the perimeter is $4 \\cdot 6 = 24$ cm.", "6", False),
]

# LaTeX spellings of the same thing.
SPELLINGS = [
    (r"\boxed{\cfrac{3}{4}}", "0.75", True),
    (r"\boxed{\theta = \frac{\pi}{4}}", r"\frac\pi4", True),  # an unbraced command as an argument
    (r"\boxed{\frac{\pi}{3}}", r"\frac\pi4", False),
    (r"\boxed{\frac{\pi}{4}}", r"\frac{\pi}4", True),
    (r"\boxed{\\frac{1}{2}}", "0.5", True),
    (r"\boxed{\\sqrt{2}}", r"\sqrt{3}", False),
    (r"\boxed{12\textnormal{ miles}}", "12", True),
    (r"\boxed{12\textnormal{ miles}}", "13", False),
    (r"\boxed{\sin(30^\circ)}", r"\frac{1}{2}", True),
    (r"\boxed{\cos 60^{\circ}}", r"\frac{1}{2}", True),
    (r"\boxed{\sin(30^\circ)}", r"\frac{\sqrt{3}}{2}", False),
    (r"\boxed{\left[\begin{array}{cc} 1 & 2 \end{array}\right]}", "[1, 2]", True),
    (r"\boxed{\begin{matrix} 1 & 2 \end{matrix}}", "1, 2", True),
    (r"\boxed{\begin{matrix} 1 & 2 \end{matrix}}", "2, 1", False),
    (r"\boxed{\left[\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}\right]}",
     r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", True),
]

# Juxtaposition is multiplication, not a function call.
PRODUCTS = [
    (r"\boxed{i(2-i)}", "1+2i", True),
    (r"\boxed{i(2-i)}", "2i-1", False),
    (r"\boxed{x(2-x)}", "2x - x^2", True),
    (r"\boxed{x(2-x)}", "2x + x^2", False),
    (r"\boxed{2^6 3^5 5^4}", r"2^6 \cdot 3^5 \cdot 5^4", True),
    (r"\boxed{2^6 3^5 5^4}", r"2^6 \cdot 3^4 \cdot 5^5", False),
]

# Junk after the answer.
TRAILING_JUNK = [
    (r"\boxed{185\ }", "185", True),
    ("185\\", "185", True),
    ("185\\", "186", False),
    (r"\boxed{\frac{\sqrt3}{3} \approx 0.577}", r"\frac{1}{\sqrt3}", True),
    (r"\boxed{\frac{\sqrt3}{3} \approx 0.577}", r"\frac{1}{3}", False),
    (r"\boxed{-2\pi}", "-2*pi", True),
    (r"\boxed{2\pi}", "-2*pi", False),
    ("-2 + sqrt(5)", r"\sqrt{5} - 2", True),  # a bare plain-text reply: function names are not prose
    ("(2*sqrt(3))/5", r"\frac{2\sqrt{3}}{5}", True),
    ("sqrt(3) + sqrt(3)", r"$3\sqrt{2}$", False),
    (r"\boxed{\sqrt{\sqrt{3}}}", "3**(1/4)", True),  # a parenthesised exponent
    (r"\boxed{\sqrt{3}}", "3**(1/4)", False),
]

# A reply that hedges or contradicts itself is not right because one of its answers is.
HEDGING = [
    (r"The answer is $\boxed{3}$ or $\boxed{4}$.", "4", False),
    (r"The answer is $\boxed{3}$ or $\boxed{4}$.", "3", False),
    (r"$x = \boxed{2}$ and $x = \boxed{-5}$", "2, -5", True),
    ("So the answer is \\boxed{3}.\nThe answer is 3.", "3", True),
    ("So we get \\boxed{12}.\n#### 12", "12", True),
    ("The answer is 4 or 5.", "4", False),
    ("The answer is either 4 or 5.", "4", False),
    ("The answer is $4$ or $5$.", "5", False),
    ("The answer is $4$ or $5$.", "4, 5", True),
    ("So \\boxed{\\frac12}.\nThe answer is 0.5.", "0.5", True),
    ("We get \\boxed{10}. Wait, let me recheck: the total is actually \\boxed{12}.", "10", False),
    ("\\boxed{6}, \\boxed{8}", "8", False),
    ("#### 5\n#### 6", "5", False),
    ("The answer is \\boxed{3}. Alternatively, it could be \\boxed{4}.", "4", False),
    (r"So it is \boxed{\frac12} or \boxed{0.5}.", "0.5", True),  # one value written twice is no hedge
    (r"So it is \boxed{3} (or equivalently \boxed{3.0}).", "3", True),
    ("She buys 9 eggs.\nThanks to the discount, she pays $18.", "18", True),  # not a sign-off
    ("It is \\boxed{3}, or maybe \\boxed{4}.", "4", False),
    ("So $x=\\boxed{3}$. Then $y = 2x = \\boxed{6}$.", "6", True),
    ("So $x=\\boxed{3}$. Then $y = 2x = \\boxed{6}$.", "3", False),
]

# The gold written as a whole solution, with or without a box.
GOLD_SOLUTIONS = [
    (r"\boxed{9}", "Natalia sold 48/2 = 24 clips in May, and 48 + 24 = 72 in all, so the answer is 9.", True),
    (r"\boxed{72}", "Natalia sold 48/2 = 24 clips in May, and 48 + 24 = 72 in all, so the answer is 9.", False),
    (r"\boxed{\frac{1}{2}}", r"We divide both sides by two, so the probability is $\frac{1}{2}$.", True),
    (r"\boxed{2}", r"We divide both sides by two, so the probability is $\frac{1}{2}$.", False),
]

# How weak models end GSM8K replies: markers, Markdown bold, a last line of working, a missed stop token.
WEAK_MODEL_ENDINGS = [
    ("Step 1: 16 - 3 - 4 = 9\nStep 2: 9 * 2 = 18\n**Answer: 18**", "18", True),
    ("Step 1: 16 - 3 - 4 = 9\nStep 2: 9 * 2 = 18\n**Answer:** 18", "18", True),
    ("Step 1: 16 - 3 - 4 = 9\nStep 2: 9 * 2 = 18\n**Answer:** 18", "9", False),
    ("Janet has 16 - 3 - 4 = 9 eggs left.\nShe makes 9 * 2 = $18.\n\n18", "18", True),
    ("Janet has 16 - 3 - 4 = 9 eggs left.\nShe makes 9 * 2 = $18.\n\n18", "9", False),
    ("Therefore, Natalia sold a total of **72 clips**.", "72", True),
    ("**Solution:**\n\n* April: 48 clips\n* May: 48 / 2 = 24 clips\n* Total: 48 + 24 = **72 clips**", "72", True),
    ("**Solution:**\n\n* April: 48 clips\n* May: 48 / 2 = 24 clips\n* Total: 48 + 24 = **72 clips**", "24", False),
    ("May: 48 / 2 = 24\nApril and May: 48 + 24 = 72", "72", True),
    ("48 / 2 = 24\n48 + 24 = 72", "72", True),
    ("48 / 2 = 24\n48 + 24 = 72", "24", False),
    ("May: 48 / 2 = 24\nTotal = 48 + 24\n= 72", "72", True),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.", "72",
     True),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.", "24",
     False),
    ("#### $1,234", "1234", True),
    ("The answer is $12.50.", "12.5", True),
    ("So the answer is 72 clips.\n\nQuestion: Weng earns $12 an hour for babysitting.", "72", True),
    ("So the total number of marbles is 45. <|im_start|>user\nWhat is 2 + 2?", "45", True),
    # A base model goes on with the next few-shot question and answers it too.
    ("She makes 9 * 2 = 18.\nThe answer is 18.\n\nQ: What is 3+4?\nA: 3+4=7. The answer is 7.", "18", True),
    ("She makes 9 * 2 = 18.\nThe answer is 18.\n\nQ: What is 3+4?\nA: 3+4=7. The answer is 7.", "7", False),
    ("\\boxed{18}\n\nQuestion: What is 2+2?\nAnswer: 4", "18", True),
    ("Question: Janet has 16 eggs.\nSolution: 16 - 3 - 4 = 9 and 9 * 2 = 18. The answer is 18.", "18", True),
    ("Let's restate it.\nProblem: eggs left times price.\n16 - 3 - 4 = 9 and 9 * 2 = 18. The answer is 18.", "18", True),
    ("So the total number of marbles is 45.</s>", "45", True),
    ("<|im_start|>assistant\nSo the total number of marbles is 45.<|im_end|>", "45", True),
    ("Thus she has 30 dollars left.<end_of_turn>\n<start_of_turn>user\nThanks! Now 7 + 8?", "30", True),
    ("Thus she has 30 dollars left.<end_of_turn>\n<start_of_turn>user\nThanks! Now 7 + 8?", "15", False),
    ("Janet makes $18 every day.\n\nI hope this helps!", "18", True),  # a sign-off states nothing
    ("Janet makes 9 * 2 = 18 dollars every day.\n\nLet me know if you have any other questions.", "18", True),
    ("Janet makes 9 * 2 = 18 dollars every day.\n\nLet me know if you have any other questions.", "9", False),
    ("She sells 16 - 3 - 4 = 9 eggs for $2 each, making 9 * 2 = $18.\n\nHope that helps!", "18", True),
    ("I hope this helps!", "18", False),
    ("The answer is not 5. It is 6.", "6", True),  # a value ruled out is not the answer
    ("The answer is not 5. It is 6.", "5", False),
    ("The answer is not 5.", "5", False),
    ("The answer is never 5.", "5", False),
    ("The answer isn't 5; it's 6.", "6", True),
    ("Work: 9 * 2 = 18\n#### Final Answer\n18", "18", True),  # a Markdown heading, not GSM8K's marker
    ("#### Step 1: Eggs left\n16 - 3 - 4 = 9\n#### Step 2: Money\n9 * 2 = 18", "18", True),
    ("#### Step 1: Eggs left\n16 - 3 - 4 = 9\n#### Step 2: Money\n9 * 2 = 18", "2", False),
    # Cut off: the last number is not an answer, whatever words came before it.
    ("First 48/2 = 24. Then 48 + 24 = 72. So she sold 72 clips in all. Next, we need to", "72", False),
    ("He has 5 * 4 = 20 apples. He gives away 20 / 2 = 10 apples. He has 20 - 10 =", "10", False),
    ("First, 3 + 4 = 7. Then 7 * 2 = 14. Then 14 - 1 = 13. Then 13 + 2 = 15. Then 15 is split into", "15", False),
]

# Replies that never commit to one answer must not score by luck.
GUESSING = [
    ("I don't know. Maybe 5?", "5", False),
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
     "did Natalia sell altogether in April and May?", "48", False),  # the question restated
    ("The answer could be 1, 2, 3, 4, or 5.", "3", False),
    ("The answer is between 3 and 5.", "3", False),
    (r"\boxed{1, 2, 3, 4, 5, 6}", "3", False),
    (r"\boxed{3 \text{ or } 4}", "3", False),
    ("Step 1: 5 + 7 = 12\nStep 2: 12 * 2 = 24\nStep 3: 24 - 1 = 23\nStep 4:", "23", False),
    ("5 + 7 = 12\n12 * 2 = 24\n24 - 1 = 23\n23 + 2 = 25\n25 + 1 = 26\n26 - 1 = 25\n25 + 1 = 26\n26 - 1 = 25\n"
     "25 + 1 = 26\n26 - 1 = 25\n25 + 1 = 26", "26", False),  # looping through two lines
    ("5 + 7 = 12\n12 * 2 = 24\n24 - 1 = 23\n23 + 2 = 25\n25 + 1 = 26", "26", True),
    ("The answer is approximately 4.", "4", True),
    ("So 1 + 1 = 2. " * 30, "2", False),  # one computation looping on one line
    ("First, 3 + 4 = 7. Then 7 * 2 = 14. Then 14 - 1 = 13. Then 13 + 2 = 15. Then 15", "15", False),
    ("It costs $7.00", "7", True),  # one short sentence: not cut off
]

# A matrix or vector unboxed, in every answer position: its `&` and `\\` are its own, not the answer's end
# (GAIR's MATH replies close "The answer is: \begin{pmatrix} 1 & 2 \\ 6 & -1 \end{pmatrix}").
_M = r"\begin{pmatrix} 1 & 2 \\ 6 & -1 \end{pmatrix}"
_M_GOLD = r"\begin{pmatrix}1&2\\6&-1\end{pmatrix}"
_V = r"\begin{pmatrix} 7 \\ -2 \end{pmatrix}"
UNBOXED_MATRICES = [
    ("The answer is: " + _M, _M_GOLD, True),
    ("The answer is: " + _M, r"\begin{pmatrix}1&2\\6&1\end{pmatrix}", False),
    ("The answer is: " + _M, "1", False),  # not its first entry
    ("The answer is: " + _V, r"\begin{pmatrix}7\\-2\end{pmatrix}", True),
    ("The answer is: " + _V, "7", False),
    ("The answer is: $" + _M + "$.", _M_GOLD, True),
    ("Final Answer: The matrix is " + _M + ".", _M_GOLD, True),
    ("The answer is:\n\\begin{pmatrix}\n1 & 2 \\\\\n6 & -1\n\\end{pmatrix}", _M_GOLD, True),  # over lines
    ("The answer is: " + _V.replace("pmatrix", "bmatrix"), r"\begin{pmatrix}7\\-2\end{pmatrix}", True),
    ("So the matrix we want is " + _M + ".", _M_GOLD, True),  # a concluding sentence, undelimited
    ("Multiplying out, the product is\n\\[" + _M + "\\]", _M_GOLD, True),
    ("Multiplying out, the product is\n\\[" + _M + "\\]", r"\begin{pmatrix}1&2\\6&1\end{pmatrix}", False),
    ("Thus the projection is $" + _V + "$.", r"\begin{pmatrix}7\\-2\end{pmatrix}", True),
    ("Thus the projection is $" + _V + "$.", r"\begin{pmatrix}-2\\7\end{pmatrix}", False),
    (r"So \boxed{" + _V + r"}.", r"\begin{pmatrix}7\\-2\end{pmatrix}", True),
    (r"\boxed{" + _M + "}. The answer is: " + _M, _M_GOLD, True),  # box and statement agree
]

# Multiple-choice letters compare without case, in every wrapping, boxed or not.
_LETTER_FORMS = ["{}", "({})", r"\text{{{}}}", r"\textbf{{{}}}", "{})", r"\text{{({})}}"]
CHOICE_LETTERS = [
    (response.format(form.format(letter)), gold, letter.upper() == gold_letter)
    for response in ("{}", r"\boxed{{{}}}", "The answer is: {}", r"The answer is $\boxed{{{}}}$.",
                     "So the correct option is {}.")
    for form in _LETTER_FORMS
    for letter in ("b", "B", "c")
    for gold, gold_letter in (("B", "B"), ("b", "B"), (r"\text{(B)}", "B"))
] + [
    ("The answer is: (b) 12", "B", True),  # a letter with its option's value
    ("The answer is: (b) 12", "C", False),
    ("b", "c", False), ("a", "a", True),
]

# A box, then a closing "The answer is: X" or "#### X": the last statement stands (GAIR's replies end so).
FINAL_STATEMENT = [
    ("So the answer is \\boxed{3}.\nThe answer is 4.", "4", True),
    ("So \\boxed{5}.\n\nFinal Answer: The final answer is 6. I hope it is correct.", "6", True),
    ("So \\boxed{5}.\n\nFinal Answer: The final answer is 6. I hope it is correct.", "5", False),
    ("So the answer is \\boxed{3}.\nThe answer is 4.", "3", False),
    (r"We get $\boxed{5}$ apples. The answer is: 6", "6", True),
    (r"We get $\boxed{5}$ apples. The answer is: 6", "5", False),
    ("So she pays \\boxed{18} dollars.\n#### 20", "20", True),
    ("So she pays \\boxed{18} dollars.\n#### 20", "18", False),
    (r"$x=\boxed{\frac{1}{2}}$. The answer is: \frac{1}{3}", r"\frac13", True),
    (r"$x=\boxed{\frac{1}{2}}$. The answer is: \frac{1}{3}", r"\frac12", False),
    (r"The area is $\boxed{12}$. The answer is: 12", "12", True),  # agreeing: one answer
    (r"The answer is $\boxed{12}$. The answer is correct.", "12", True),  # a verdict, not a value
    (r"Option $\boxed{A}$. The answer is: (C)", "C", True),
    (r"Option $\boxed{A}$. The answer is: (C)", "A", False),
]


KINDS = {
    "extraction": EXTRACTION, "numbers": NUMBERS, "formatting": FORMATTING, "symbolic": SYMBOLIC,
    "tuples": TUPLES, "intervals": INTERVALS, "sets": SETS, "lists": LISTS, "matrices": MATRICES,
    "equations": EQUATIONS, "plus_minus": PLUS_MINUS, "infinity": INFINITY,
    "choices_and_text": CHOICES_AND_TEXT, "traps": TRAPS, "malformed": MALFORMED,
    "real_output": REAL_OUTPUT, "relations": RELATIONS, "labelled": LABELLED, "collections": COLLECTIONS,
    "number_formats": NUMBER_FORMATS, "tolerance": TOLERANCE, "prose": PROSE, "spellings": SPELLINGS,
    "products": PRODUCTS, "trailing_junk": TRAILING_JUNK, "hedging": HEDGING, "gold_solutions": GOLD_SOLUTIONS,
    "weak_model_endings": WEAK_MODEL_ENDINGS, "guessing": GUESSING,
    "unboxed_matrices": UNBOXED_MATRICES, "choice_letters": CHOICE_LETTERS, "final_statement": FINAL_STATEMENT,
}

CASES = [(response, gold, verdict, kind) for kind, cases in KINDS.items() for response, gold, verdict in cases]
